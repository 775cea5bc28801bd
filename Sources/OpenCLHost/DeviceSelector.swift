/// How a caller names a device: `--device` or `NGRAD_DEVICE`.
///
/// Forms: an index (`"1"`), `"gpu"`, `"cpu"`, or a case-insensitive part of the device
/// name (`"nvidia"`, `"pthread"`). With no selector, the first GPU is used, else the
/// first CPU device, else the first device of any kind.
public enum DeviceSelector: Sendable, Hashable, CustomStringConvertible {
    /// The first GPU, else the first CPU, else the first device.
    case automatic
    /// The device at this position in `Device.all()`.
    case index(Int)
    /// The first GPU.
    case gpu
    /// The first CPU device.
    case cpu
    /// The first device whose name contains this text, ignoring case.
    case name(String)

    /// The environment variable read by `fromEnvironment`.
    public static let environmentVariable = "NGRAD_DEVICE"

    /// Parses the textual forms; throws for an empty or negative selector.
    public init(parsing text: String) throws {
        let trimmed = text.trimmingWhitespace()
        switch trimmed.lowercased() {
        case "":
            throw OpenCLError.invalidArgument(name: "device", reason: "the device selector is empty")
        case "gpu":
            self = .gpu
        case "cpu":
            self = .cpu
        default:
            if let index = Int(trimmed) {
                guard index >= 0 else {
                    throw OpenCLError.invalidArgument(name: "device", reason: "index \(index) is negative")
                }
                self = .index(index)
            } else {
                self = .name(trimmed)
            }
        }
    }

    /// `explicit` if given, else `NGRAD_DEVICE` if set and non-empty, else `.automatic`.
    public static func resolve(explicit: String?, environment: [String: String]) throws -> DeviceSelector {
        if let explicit { return try DeviceSelector(parsing: explicit) }
        if let value = environment[environmentVariable], !value.trimmingWhitespace().isEmpty {
            return try DeviceSelector(parsing: value)
        }
        return .automatic
    }

    public var description: String {
        switch self {
        case .automatic: "automatic"
        case let .index(index): "\(index)"
        case .gpu: "gpu"
        case .cpu: "cpu"
        case let .name(name): name
        }
    }

    /// The device this selector names among `devices`.
    public func select(from devices: [Device]) throws -> Device {
        let match: Device?
        switch self {
        case .automatic:
            match = devices.first { $0.kind == .gpu } ?? devices.first { $0.kind == .cpu } ?? devices.first
        case let .index(index):
            match = devices.first { $0.index == index }
        case .gpu:
            match = devices.first { $0.kind == .gpu }
        case .cpu:
            match = devices.first { $0.kind == .cpu }
        case let .name(part):
            match = devices.first { $0.name.lowercased().contains(part.lowercased()) }
        }
        if let match { return match }
        if devices.isEmpty {
            throw OpenCLError.noDevices(
                reason: "the ICD loader lists no platform with a device (install pocl-opencl-icd for the CPU)")
        }
        throw OpenCLError.noMatchingDevice(selector: description, available: devices.map(\.description))
    }
}
