/// An error of the MPI layer. Every rank that sees one should end the job (see
/// `Communicator.abortingOnError(_:)`): the other ranks may be waiting in a collective.
public enum MPIError: Error, CustomStringConvertible, Equatable {
    /// An MPI call returned an error code (the communicator uses `MPI_ERRORS_RETURN`).
    case callFailed(function: String, code: Int32, message: String)
    /// The ranks passed inconsistent arguments to one collective (seen identically on every
    /// rank, so every rank throws it and none waits).
    case ranksDisagree(name: String, reason: String)
    /// An argument this rank passed is unusable.
    case invalidArgument(name: String, reason: String)

    public var description: String {
        switch self {
        case let .callFailed(function, code, message): "\(function) failed with error \(code): \(message)"
        case let .ranksDisagree(name, reason): "the ranks disagree on \(name): \(reason)"
        case let .invalidArgument(name, reason): "invalid argument '\(name)': \(reason)"
        }
    }
}
