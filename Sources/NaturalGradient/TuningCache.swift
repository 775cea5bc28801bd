import Foundation
import OpenCLHost

/// Kernel parameters that `ngrad tune` measured as fastest on a device, kept in the user's
/// cache directory and applied automatically by every `KernelConfiguration` afterwards.
///
/// One JSON file holds entries keyed by device name, driver version, kernel family and
/// element type. Entries are applied on top of the defaults chosen from the device's
/// properties (`KernelConfiguration.deviceDefaults`) and under any explicit `tuning:`
/// override. The file is only ever a hint: a missing, unreadable, corrupt or foreign file,
/// an entry for another device or driver, and an entry whose values are outside the
/// kernel's valid space are all ignored (the defaults apply).
///
/// Location: `$NGRAD_TUNING_CACHE` (a file path; `off`, `none`, `0` or `disabled`
/// disables the cache), else `$XDG_CACHE_HOME/naturalgradient/tuning.json`, else
/// `~/.cache/naturalgradient/tuning.json`.
public struct TuningCache: Sendable {
    /// The environment variable that moves or disables the cache.
    public static let environmentVariable = "NGRAD_TUNING_CACHE"
    /// The `format` field of a tuning file; a JSON file without it is someone else's.
    public static let formatName = "naturalgradient-tuning"
    public static let formatVersion = 1

    /// One device's winners for one kernel family and element type.
    public struct Entry: Codable, Sendable, Equatable {
        public var device: String
        public var driverVersion: String
        /// The kernel file, e.g. `FisherProducts.cl`.
        public var family: String
        /// `float` or `double`.
        public var element: String
        /// The tuned values: `-D` defines, plus host-side launch parameters such as `GROUPS`.
        public var defines: [String: Int]
        /// When and how it was measured (informational).
        public var date: String?
        public var note: String?

        public init(
            device: String, driverVersion: String, family: String, element: String, defines: [String: Int],
            date: String? = nil, note: String? = nil
        ) {
            self.device = device
            self.driverVersion = driverVersion
            self.family = family
            self.element = element
            self.defines = defines
            self.date = date
            self.note = note
        }

        func matches(device: String, driverVersion: String, family: String, element: String) -> Bool {
            self.device == device && self.driverVersion == driverVersion && self.family == family
                && self.element == element
        }
    }

    /// What was found at `location` when the cache was loaded.
    public enum State: Sendable, Equatable {
        /// Disabled through the environment variable.
        case disabled
        /// No file yet.
        case missing
        /// Read; `entries` holds its valid entries.
        case loaded
        /// A file that is not a tuning file (unreadable, corrupt, foreign or a newer
        /// version): ignored, and replaced by the next `store`.
        case ignored(reason: String)
    }

    private struct File: Codable {
        var format: String
        var version: Int
        var entries: [Entry]
    }

    /// The file, or nil when the cache is disabled.
    public let location: URL?
    /// The usable entries read from the file.
    public let entries: [Entry]
    public let state: State

    /// The cache at `location` (nil: disabled), read now.
    public init(location: URL?) {
        self.location = location
        guard let location else {
            (entries, state) = ([], .disabled)
            return
        }
        guard FileManager.default.fileExists(atPath: location.path) else {
            (entries, state) = ([], .missing)
            return
        }
        guard let data = FileManager.default.contents(atPath: location.path) else {
            (entries, state) = ([], .ignored(reason: "unreadable"))
            return
        }
        guard let file = try? JSONDecoder().decode(File.self, from: data) else {
            (entries, state) = ([], .ignored(reason: "not a tuning file (corrupt or foreign JSON)"))
            return
        }
        guard file.format == Self.formatName else {
            (entries, state) = ([], .ignored(reason: "foreign format '\(file.format)'"))
            return
        }
        guard file.version == Self.formatVersion else {
            (entries, state) = ([], .ignored(reason: "format version \(file.version), this build reads \(Self.formatVersion)"))
            return
        }
        (entries, state) = (file.entries, .loaded)
    }

    /// The cache the environment names (see the type's documentation), read now.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.init(location: Self.location(environment: environment))
    }

    /// The process's cache, read once at first use.
    public static let current = TuningCache()

    /// Where the environment puts the cache file; nil when it disables the cache.
    public static func location(environment: [String: String]) -> URL? {
        if let explicit = environment[environmentVariable], !explicit.isEmpty {
            if ["off", "none", "0", "disabled", "false"].contains(explicit.lowercased()) { return nil }
            return URL(fileURLWithPath: explicit)
        }
        let base =
            environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSTemporaryDirectory()) + "/.cache"
        return URL(fileURLWithPath: base).appendingPathComponent("naturalgradient/tuning.json")
    }

    /// The valid tuned values for `family` and `element` on `device` (empty when there are
    /// none, or when the stored ones are outside the kernel's valid space).
    public func defines(for device: Device, family: KernelFamily, element: String) -> [String: Int] {
        guard
            let entry = entries.last(where: {
                $0.matches(
                    device: device.name, driverVersion: device.driverVersion, family: family.rawValue, element: element)
            }), Self.isValid(entry.defines, family: family, device: device)
        else { return [:] }
        return entry.defines
    }

    /// Writes `defines` for `family` and `element` on `device`, replacing an older entry for
    /// the same key and keeping every other entry; an ignored (corrupt or foreign) file is
    /// replaced. Writes a temporary file and renames it into place. Returns the new cache.
    @discardableResult
    public func storing(
        _ defines: [String: Int], for device: Device, family: KernelFamily, element: String, note: String? = nil
    ) throws -> TuningCache {
        guard let location else { throw NaturalGradientError.invalidArgument(name: "cache", reason: "is disabled") }
        guard Self.isValid(defines, family: family, device: device) else {
            throw NaturalGradientError.invalidArgument(
                name: "defines", reason: "\(defines) is outside \(family.rawValue)'s tunable space")
        }
        let entry = Entry(
            device: device.name, driverVersion: device.driverVersion, family: family.rawValue, element: element,
            defines: defines, date: ISO8601DateFormatter().string(from: Date()), note: note)
        var kept = entries.filter {
            !$0.matches(device: entry.device, driverVersion: entry.driverVersion, family: entry.family, element: element)
        }
        kept.append(entry)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(File(format: Self.formatName, version: Self.formatVersion, entries: kept))
        let directory = location.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let temporary = directory.appendingPathComponent(".\(location.lastPathComponent).\(getpid()).tmp")
        try data.write(to: temporary)
        if rename(temporary.path, location.path) != 0 {
            try? FileManager.default.removeItem(at: temporary)
            throw NaturalGradientError.invalidArgument(
                name: "cache", reason: "cannot write \(location.path) (errno \(errno))")
        }
        return TuningCache(location: location)
    }

    /// Host-side launch parameters that are not `-D` defines of the kernel file.
    static let hostParameters: Set<String> = ["GROUPS"]

    /// Whether `defines` lie in `family`'s tunable space on `device`, so that a stale or
    /// hand-edited cache can never build a kernel that the launch code does not expect.
    public static func isValid(_ defines: [String: Int], family: KernelFamily, device: Device) -> Bool {
        func groupSize(_ value: Int) -> Bool {
            value >= 1 && value <= device.maxWorkGroupSize && value & (value - 1) == 0
        }
        switch family {
        case .fisherAccumulation:
            guard Set(defines.keys).isSubset(of: ["RM", "VW"]) else { return false }
            let rows = defines["RM"] ?? 1
            let columns = defines["VW"] ?? 16
            return [1, 2, 4, 8, 16].contains(rows) && [2, 4, 8, 16].contains(columns) && columns % rows == 0
        case .fisherProducts:
            guard Set(defines.keys).isSubset(of: ["WGS", "GROUPS"]) else { return false }
            if let wgs = defines["WGS"], !groupSize(wgs) || wgs < 8 { return false }
            if let groups = defines["GROUPS"], !(1...4096).contains(groups) { return false }
            return true
        case .reduction, .conjugateGradient:
            guard Set(defines.keys).isSubset(of: ["WGS"]) else { return false }
            if let wgs = defines["WGS"], !groupSize(wgs) || wgs < 8 { return false }
            return true
        case .vector, .kronecker, .outputMetrics:
            return defines.isEmpty
        }
    }
}
