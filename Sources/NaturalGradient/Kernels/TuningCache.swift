import FileWriting
import Foundation
import OpenCLHost

/// Kernel parameters that `ngrad tune` measured as fastest on a device, kept in the user's
/// cache directory and applied automatically by every launch plan afterwards.
///
/// One JSON file holds entries keyed by device name, driver version, kernel family and
/// element type; an entry's `defines` object holds the family's `KernelTunables` by define
/// name, decoded over the device defaults (`KernelTunables.defaults`). A caller's explicit
/// `tunables:` wins over the cache. The file is only ever a hint: a missing, unreadable,
/// corrupt, foreign or non-regular file, an entry for another device or driver, and an
/// entry whose values are outside the family's valid space are all ignored (the defaults
/// apply). Stores lock and merge (see `storing`), so concurrent writers lose nothing.
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
        /// The kernel file, e.g. `CurvatureProducts.cl`.
        public var family: String
        /// `float` or `double`.
        public var element: String
        /// The tuned values by define name, plus host-side launch parameters such as
        /// `GROUPS` (the JSON field `defines`); decoded into the family's `KernelTunables`.
        var defines: [String: Int]
        /// When and how it was measured (informational).
        public var date: String?
        public var note: String?

        init(
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

        /// The tuned values as `NAME=value` pairs in name order.
        public var values: String { defines.keys.sorted().map { "\($0)=\(defines[$0] ?? 0)" }.joined(separator: " ") }

        /// This entry with a renamed kernel file's old name replaced by the current one.
        var withCurrentFamilyName: Entry {
            var entry = self
            entry.family = TuningCache.renamedFamilies[family] ?? family
            return entry
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
        // A FIFO or a device would block or never end a read: only a regular file is read.
        var status = stat()
        guard stat(location.path, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            (entries, state) = ([], .ignored(reason: "not a regular file"))
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
        (entries, state) = (file.entries.map(\.withCurrentFamilyName), .loaded)
    }

    /// Kernel files renamed since version 1 of the format, by their old name: their entries
    /// are read under the new name, so values tuned before the rename still apply (and a
    /// store replaces the old entry rather than keeping both).
    static let renamedFamilies = [
        "FisherProducts.cl": KernelFamily.curvatureProducts.rawValue,
        "OutputMetrics.cl": KernelFamily.similarityFactors.rawValue,
    ]

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

    /// The valid tuned values for `family` and `element` on `device`, by define name
    /// (empty when there are none, or when the stored ones are outside the kernel's space).
    func defines(for device: Device, family: KernelFamily, element: String) -> [String: Int] {
        guard
            let entry = entry(device: device, family: family, element: element),
            Self.isValid(entry.defines, family: family, device: device, element: element)
        else { return [:] }
        return entry.defines
    }

    /// Whether the cache holds valid tuned values for `family` and `element` on `device`.
    public func isTuned(_ family: KernelFamily, on device: Device, element: String) -> Bool {
        !defines(for: device, family: family, element: element).isEmpty
    }

    /// The stored tunables of `Tunables`' family for `element` on `device`, over the device
    /// defaults; nil when there are none or they are outside the family's valid space.
    public func tunables<Tunables: KernelTunables, Element: DeviceScalar>(
        _: Tunables.Type, for device: Device, element: Element.Type
    ) -> Tunables? {
        guard let entry = entry(device: device, family: Tunables.family, element: Element.openCLTypeName),
            let tunables = try? Tunables.defaults(for: device, element: element).overriding(entry.defines),
            tunables.violation(on: device, element: element) == nil
        else { return nil }
        return tunables
    }

    private func entry(device: Device, family: KernelFamily, element: String) -> Entry? {
        entries.last {
            $0.matches(device: device.name, driverVersion: device.driverVersion, family: family.rawValue, element: element)
        }
    }

    /// Writes `tunables` for `element` on `device`; see `storing(_:for:family:element:note:)`.
    @discardableResult
    public func storing<Tunables: KernelTunables, Element: DeviceScalar>(
        _ tunables: Tunables, for device: Device, element _: Element.Type, note: String? = nil
    ) throws -> TuningCache {
        try storing(
            tunables.encodedValues, for: device, family: Tunables.family, element: Element.openCLTypeName, note: note)
    }

    /// Writes `defines` for `family` and `element` on `device`, replacing an older entry for
    /// the same key and keeping every other entry; an ignored (corrupt or foreign) file is
    /// replaced. Returns the new cache.
    ///
    /// Safe against concurrent writers (two `ngrad tune` runs): under an exclusive `flock`
    /// on `<file>.lock` beside the cache it re-reads the file, merges this entry into what
    /// is there now (not into this snapshot) and writes a temporary file that it renames
    /// into place. The rename only ever replaces a regular file: where the cache path is a
    /// symbolic link, the link is kept and its target is written (the same way); where the
    /// path or the link's target is anything but a regular file (a device, a directory, a
    /// FIFO), nothing is written and the call throws.
    @discardableResult
    func storing(
        _ defines: [String: Int], for device: Device, family: KernelFamily, element: String, note: String? = nil
    ) throws -> TuningCache {
        guard let location else { throw NaturalGradientError.invalidArgument(name: "cache", reason: "is disabled") }
        guard Self.isValid(defines, family: family, device: device, element: element) else {
            throw NaturalGradientError.invalidArgument(
                name: "defines", reason: "\(defines) is outside \(family.rawValue)'s tunable space")
        }
        let entry = Entry(
            device: device.name, driverVersion: device.driverVersion, family: family.rawValue, element: element,
            defines: defines, date: ISO8601DateFormatter().string(from: Date()), note: note)
        let target = try Self.writableTarget(location)
        let directory = target.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return try Self.withLock(beside: target) {
            let current = TuningCache(location: target)
            var kept = current.entries.filter {
                !$0.matches(device: entry.device, driverVersion: entry.driverVersion, family: entry.family, element: element)
            }
            kept.append(entry)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = try encoder.encode(File(format: Self.formatName, version: Self.formatVersion, entries: kept))
            // Checked again under the lock: the path may have changed since.
            _ = try Self.writableTarget(target)
            let temporary = directory.appendingPathComponent(
                ".\(target.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp")
            do {
                try data.write(to: temporary)
            } catch {
                throw NaturalGradientError.invalidArgument(
                    name: "cache", reason: "cannot write \(temporary.path): \(error.localizedDescription)")
            }
            if rename(temporary.path, target.path) != 0 {
                let code = errno
                try? FileManager.default.removeItem(at: temporary)
                throw NaturalGradientError.invalidArgument(
                    name: "cache", reason: "cannot replace \(target.path): \(String(cString: strerror(code)))")
            }
            return TuningCache(location: location)
        }
    }

    /// The file a store writes for `location`: itself, or where a symbolic link points
    /// (resolved fully); throws unless that is a regular file or absent.
    static func writableTarget(_ location: URL) throws -> URL {
        // Follow links by hand: Foundation leaves a link to a missing file unresolved.
        let target: URL
        do {
            target = URL(fileURLWithPath: try FileReplacement.finalTarget(location.path))
        } catch let failure as FileReplacement.Failure {
            throw NaturalGradientError.invalidArgument(
                name: "cache", reason: "cannot follow \(location.path): \(failure.reason)")
        }
        var status = stat()
        guard lstat(target.path, &status) == 0 else {
            if errno == ENOENT { return target }
            throw NaturalGradientError.invalidArgument(
                name: "cache", reason: "cannot inspect \(target.path): \(String(cString: strerror(errno)))")
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw NaturalGradientError.invalidArgument(
                name: "cache",
                reason: "\(target.path) is not a regular file; the tuning cache only ever replaces a regular file")
        }
        return target
    }

    /// Runs `body` holding an exclusive `flock` on `<file>.lock` (created if missing).
    private static func withLock<T>(beside file: URL, _ body: () throws -> T) throws -> T {
        let lockPath = file.path + ".lock"
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw NaturalGradientError.invalidArgument(
                name: "cache", reason: "cannot open the lock file \(lockPath): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw NaturalGradientError.invalidArgument(
                    name: "cache", reason: "cannot lock \(lockPath): \(String(cString: strerror(errno)))")
            }
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }

    /// Whether `defines` lie in `family`'s tunable space on `device` (each value admitted,
    /// every rule across them kept), so that a stale or hand-edited cache can never build a
    /// kernel that computes wrong results: the family's `KernelTunables` rule.
    static func isValid(
        _ defines: [String: Int], family: KernelFamily, device: Device, element: String = "float"
    )
        -> Bool
    {
        violation(of: defines, family: family, device: device, element: element) == nil
    }

    /// Why `entry` is not used on `device` (nil: it is): an unknown kernel file or element
    /// type, a name its family has no tunable for, or the rule of the family's tunable space
    /// that its values break there. `ngrad tune --show` prints it beside a rejected entry.
    public static func rejection(of entry: Entry, on device: Device) -> String? {
        guard let family = KernelFamily(rawValue: entry.family) else {
            return
                "unknown kernel file '\(entry.family)' (known: \(KernelFamily.allCases.map(\.rawValue).joined(separator: ", ")))"
        }
        guard entry.element == Float.openCLTypeName || entry.element == Double.openCLTypeName else {
            return "unknown element type '\(entry.element)' (float or double)"
        }
        return violation(of: entry.defines, family: family, device: device, element: entry.element)
    }

    /// The rule `defines` break in `family`'s tunable space on `device`, or nil.
    private static func violation(
        of defines: [String: Int], family: KernelFamily, device: Device, element: String
    )
        -> String?
    {
        func check<Tunables: KernelTunables, Element: DeviceScalar>(_: Tunables.Type, _ type: Element.Type) -> String? {
            do {
                return try Tunables.defaults(for: device, element: type).overriding(defines).violation(on: device, element: type)
            } catch let error as NaturalGradientError {
                return error.description
            } catch {
                return "\(error)"
            }
        }
        return element == Double.openCLTypeName
            ? check(family.tunablesType, Double.self) : check(family.tunablesType, Float.self)
    }
}
