import ArgumentParser
import Foundation
import NaturalGradient

/// `--device`, shared by every command that runs on a device.
struct DeviceOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Device: an index from 'ngrad devices', 'gpu', 'cpu', or part of the name.",
            discussion: "Defaults to $NGRAD_DEVICE, else the first GPU, else the first CPU device."))
    var device: String?

    /// The chosen device.
    func selectDevice() throws -> Device {
        let selector = try DeviceSelector.resolve(explicit: device, environment: ProcessInfo.processInfo.environment)
        return try selector.select(from: Device.all())
    }
}
