import OpenCLHost

/// The element types the communicator moves: float32 and float64 (MPI_FLOAT, MPI_DOUBLE).
public enum MPIElementKind: Sendable {
    /// `Float`, MPI_FLOAT.
    case float32
    /// `Double`, MPI_DOUBLE.
    case float64
}

/// A device scalar MPI can send and sum. `Float` and `Double` conform.
public protocol CommunicableScalar: DeviceScalar {
    /// The MPI datatype of the element.
    static var mpiElement: MPIElementKind { get }
}

extension Float: CommunicableScalar {
    /// MPI_FLOAT.
    public static var mpiElement: MPIElementKind { .float32 }
}

extension Double: CommunicableScalar {
    /// MPI_DOUBLE.
    public static var mpiElement: MPIElementKind { .float64 }
}
