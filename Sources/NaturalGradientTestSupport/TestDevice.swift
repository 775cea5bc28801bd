import Foundation
import OpenCLHost

// MARK: - The device the tests run on

/// One context shared by the tests (OpenCL contexts and queues are thread-safe), on the
/// device `NGRAD_DEVICE` names, else the default device. Tests that count cache hits make
/// their own context.
public enum TestDevice {
    private static let shared = Result {
        try Context(selector: DeviceSelector.resolve(explicit: nil, environment: environment()))
    }

    /// The shared context, or the error that creating it threw (no device, a bad selector).
    public static func context() throws -> Context { try shared.get() }

    /// The device-selection variables of this process's environment (only `NGRAD_DEVICE`).
    public static func environment() -> [String: String] {
        var values: [String: String] = [:]
        if let value = getenv(DeviceSelector.environmentVariable) {
            values[DeviceSelector.environmentVariable] = String(cString: value)
        }
        return values
    }
}

/// Whether the test device computes in double precision (so Double tests can run).
public func deviceSupports<T: DeviceScalar>(_: T.Type) -> Bool {
    guard let context = try? TestDevice.context() else { return false }
    return !T.requiresFloat64 || context.device.supportsFloat64
}

/// The sizes the issue asks every vector kernel to be checked at.
public let awkwardVectorSizes = [1, 7, 33, 1000, 4097, 1_000_003]
