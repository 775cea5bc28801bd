import ArgumentParser
import Foundation
import NaturalGradient
import NumPyFormat

/// The exit-code contract of every `ngrad` command (README, "Exit codes and output files").
///
/// | code | meaning |
/// |---|---|
/// | 0 | success (also `--help` and `--version`) |
/// | 1 | the work ran but did not succeed: a solve that did not converge or is not accurate, a non-finite result, a wrong benchmark answer, a kernel that does not build, or results that could not be written (an output file or run directory, standard output) |
/// | 2 | usage and input errors, found before any work: a bad flag or value (every numeric option has a rule or range), an unknown device, an unreadable or invalid input file, an output that is one of the inputs or empty |
/// | 3 | no usable OpenCL: no platform or device installed, a driver call that failed, a device without a feature the run needs (fp64 for `tune`, `solve` or `kernels` in double) |
///
/// Why these four: a script retries or reports differently on each. 2 means "fix the
/// command line or the inputs", 3 "fix the machine (install or repair a driver)", 1 "the
/// inputs were accepted but the answer or its files are not there": for a solve that is an
/// ill-posed system, for an output it is the disk. Writing failures share 1 rather than a
/// code of their own because the tool's first releases (and their tests) already returned
/// 1 for an unwritable `--output`.
enum ExitStatus {
    static let success: Int32 = 0
    /// The work ran but did not succeed, or its results could not be written.
    static let failure: Int32 = 1
    /// A usage or input error, before any work.
    static let usage: Int32 = 2
    /// No usable OpenCL platform, device or driver.
    static let device: Int32 = 3

    /// The exit status and the one message for an error thrown by a command's `run()`.
    static func classify(_ error: any Error) -> (status: Int32, message: String) {
        switch error {
        case let error as OpenCLError:
            switch error {
            case .buildFailed: return (failure, error.description)
            case .noMatchingDevice, .invalidArgument: return (usage, error.description)
            case .noDevices:
                let reason = error.description.replacingOccurrences(of: " (install pocl-opencl-icd for the CPU)", with: "")
                return (device, reason + ". " + DeviceInstallHint.text)
            case .callFailed, .unsupported: return (device, error.description)
            }
        case let error as NaturalGradientError:
            return (usage, error.description)
        case let error as DenseSolveError:
            return (failure, error.description)
        case let error as NumPyFormatError:
            return (usage, error.description)
        case let error as OutputFileError:
            return (failure, error.description)
        case let error as StandardOutputError:
            return (failure, error.description)
        case let error as CommandFailure:
            return (failure, error.message)
        case let error as ValidationError:
            return (usage, error.message)
        case let error as CocoaError:
            return describe(error)
        case let error as POSIXError:
            return (failure, String(cString: strerror(error.code.rawValue)))
        default:
            return (failure, Ngrad.message(for: error))
        }
    }

    /// A Foundation file error as one line ("cannot read 'path': no such file"), not the
    /// raw `NSCocoaErrorDomain` dump: reading problems are input errors (2), the rest are
    /// failures to write results (1).
    private static func describe(_ error: CocoaError) -> (status: Int32, message: String) {
        let path = error.filePath ?? error.url?.path
        let underlying = (error.userInfo[NSUnderlyingErrorKey] as? NSError).flatMap { nested -> String? in
            nested.domain == NSPOSIXErrorDomain ? String(cString: strerror(Int32(nested.code))) : nil
        }
        let isRead =
            (CocoaError.Code.fileReadUnknown.rawValue...CocoaError.Code.fileReadUnknownStringEncoding.rawValue)
            .contains(error.code.rawValue) || error.code == .fileNoSuchFile
        var reason: String
        switch error.code {
        case .fileNoSuchFile, .fileReadNoSuchFile: reason = "no such file"
        case .fileReadNoPermission, .fileWriteNoPermission: reason = "permission denied"
        case .fileReadCorruptFile: reason = "the contents are not valid"
        case .fileReadTooLarge: reason = "the file is too large"
        case .fileReadInapplicableStringEncoding, .fileReadUnknownStringEncoding: reason = "the file is not UTF-8 text"
        case .fileWriteOutOfSpace: reason = "no space left on the device"
        case .fileWriteVolumeReadOnly: reason = "the file system is read-only"
        case .fileWriteFileExists: reason = "the file exists"
        case .fileReadInvalidFileName, .fileWriteInvalidFileName: reason = "the name is not a valid file name"
        default: reason = underlying ?? "I/O error (Foundation code \(error.code.rawValue))"
        }
        // Foundation says "unknown" or "permission denied" for a directory or a device; the
        // file's type says what is actually wrong.
        var isDirectory: ObjCBool = false
        if let path, FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            if isDirectory.boolValue {
                reason = "it is a directory, not a file"
            } else if let type = try? FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType,
                type != .typeRegular, type != .typeSymbolicLink
            {
                reason = "it is not a regular file"
            }
        }
        let target = path.map { " '\($0)'" } ?? ""
        let detail = underlying.map { $0.lowercased() == reason.lowercased() ? "" : " (\($0))" } ?? ""
        return isRead
            ? (usage, "cannot read\(target): \(reason)\(detail)") : (failure, "cannot write\(target): \(reason)\(detail)")
    }

    /// An ArgumentParser message on one line: its "- choice" lists become "a, b, c", other
    /// lines are joined with "; ", and a missing value that the command line does hold as a
    /// negative number after a space gets the `--name=-1` hint.
    static func usageLine(_ message: String, arguments: [String]) -> String {
        var parts: [String] = []
        for line in message.split(whereSeparator: \.isNewline) {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            if text.hasPrefix("- "), let last = parts.last {
                let item = String(text.dropFirst(2))
                parts[parts.count - 1] = last.hasSuffix(":") ? last + " " + item : last + ", " + item
            } else {
                parts.append(text)
            }
        }
        var line = parts.joined(separator: "; ")
        if line.hasPrefix("Missing value for '") {
            for (index, argument) in arguments.enumerated().dropLast()
            where argument.hasPrefix("--") && line.contains("'\(argument) ") {
                let next = arguments[index + 1]
                if next.hasPrefix("-"), Double(next) != nil || next.first(where: { $0 != "-" })?.isNumber == true {
                    line += "; to pass a negative value write \(argument)=\(next)"
                }
            }
        }
        return line
    }
}

/// A command's work ran but its result is not a success (exit status 1); `message` says
/// what, and names the input that led there.
struct CommandFailure: Error, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// How to get an OpenCL platform, for every "no device" message.
enum DeviceInstallHint {
    static let text =
        "Install an OpenCL driver: for the CPU, PoCL (`apt-get install pocl-opencl-icd`); for a GPU, its vendor's "
        + "OpenCL ICD. The ICD loader reads /etc/OpenCL/vendors (or the directory in $OCL_ICD_VENDORS); "
        + "'clinfo -l' lists what it finds"
}
