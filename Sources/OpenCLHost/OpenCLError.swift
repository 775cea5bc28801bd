import COpenCL

/// Everything the host layer can throw. Messages name OpenCL status codes symbolically,
/// the API call that failed and the object it was called on.
public enum OpenCLError: Error, Equatable, Sendable {
    /// An OpenCL API call returned an error status.
    case callFailed(function: String, status: Int32, object: String)
    /// `clBuildProgram` failed; carries everything needed to reproduce and read the failure.
    case buildFailed(file: String, options: String, device: String, status: Int32, log: String)
    /// No OpenCL platform or device is installed.
    case noDevices(reason: String)
    /// A device selector matched nothing; `available` lists what there is.
    case noMatchingDevice(selector: String, available: [String])
    /// An argument a caller passed is unusable; `name` is the argument, `reason` why.
    case invalidArgument(name: String, reason: String)
    /// The device lacks something the operation needs (for example `cl_khr_fp64`).
    case unsupported(device: String, feature: String)
}

extension OpenCLError: CustomStringConvertible {
    public var description: String {
        switch self {
        case let .callFailed(function, status, object):
            return "\(function) failed with \(OpenCLStatus.name(of: status)) (\(status)) on \(object)"
        case let .buildFailed(file, options, device, status, log):
            let trimmed = log.trimmingWhitespace()
            return """
                building \(file) for \(device) failed with \(OpenCLStatus.name(of: status)) (\(status))
                build options: \(options.isEmpty ? "(none)" : options)
                build log:
                \(trimmed.isEmpty ? "(empty)" : trimmed)
                """
        case let .noDevices(reason):
            return "no OpenCL device found: \(reason)"
        case let .noMatchingDevice(selector, available):
            let list = available.isEmpty ? "none" : available.joined(separator: "; ")
            return "no OpenCL device matches '\(selector)'; available: \(list)"
        case let .invalidArgument(name, reason):
            return "invalid argument '\(name)': \(reason)"
        case let .unsupported(device, feature):
            return "\(device) does not support \(feature)"
        }
    }
}

/// Throws `OpenCLError.callFailed` unless `status` is `CL_SUCCESS`.
@inline(__always)
func check(_ status: cl_int, _ function: @autoclosure () -> String, _ object: @autoclosure () -> String) throws {
    if status != CL_SUCCESS {
        throw OpenCLError.callFailed(function: function(), status: status, object: object())
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace || first == "\0" { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace || last == "\0" { slice.removeLast() }
        return String(slice)
    }
}
