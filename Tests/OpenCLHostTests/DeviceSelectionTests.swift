import Testing
import NaturalGradientTestSupport

@testable import OpenCLHost

@Suite("Device discovery and selection")
struct DeviceSelectionTests {
    @Test func discoversAtLeastOneDeviceWithProperties() throws {
        let devices = try Device.all()
        #expect(!devices.isEmpty)
        for (position, device) in devices.enumerated() {
            #expect(device.index == position)
            #expect(!device.name.isEmpty)
            #expect(device.computeUnits > 0)
            #expect(device.maxWorkGroupSize > 0)
            #expect(device.globalMemoryBytes > 0)
            #expect(device.localMemoryBytes > 0)
            #expect(device.openCLCVersion.hasPrefix("OpenCL C"))
            #expect(try device.probePreferredWorkGroupMultiple() > 0)
        }
    }

    @Test func parsesEachSelectorForm() throws {
        #expect(try DeviceSelector(parsing: "0") == .index(0))
        #expect(try DeviceSelector(parsing: " 12 ") == .index(12))
        #expect(try DeviceSelector(parsing: "GPU") == .gpu)
        #expect(try DeviceSelector(parsing: "cpu") == .cpu)
        #expect(try DeviceSelector(parsing: "NVIDIA") == .name("NVIDIA"))
        #expect(throws: OpenCLError.invalidArgument(name: "device", reason: "the device selector is empty")) {
            try DeviceSelector(parsing: "  ")
        }
        #expect(throws: OpenCLError.self) { try DeviceSelector(parsing: "-1") }
    }

    @Test func explicitSelectorWinsOverEnvironment() throws {
        let environment = [DeviceSelector.environmentVariable: "cpu"]
        #expect(try DeviceSelector.resolve(explicit: "gpu", environment: environment) == .gpu)
        #expect(try DeviceSelector.resolve(explicit: nil, environment: environment) == .cpu)
        #expect(try DeviceSelector.resolve(explicit: nil, environment: [:]) == .automatic)
        #expect(try DeviceSelector.resolve(explicit: nil, environment: [DeviceSelector.environmentVariable: ""]) == .automatic)
    }

    @Test func selectsByIndexKindAndName() throws {
        let devices = try Device.all()
        let first = try #require(devices.first)
        #expect(try DeviceSelector.index(first.index).select(from: devices) == first)

        // A case-changed middle part of the name still matches.
        let part = String(first.name.dropFirst(first.name.count / 3).prefix(5))
        let byName = try DeviceSelector(parsing: part.uppercased()).select(from: devices)
        #expect(byName.name.lowercased().contains(part.lowercased()))

        for (selector, kind) in [(DeviceSelector.cpu, Device.Kind.cpu), (.gpu, .gpu)] {
            if devices.contains(where: { $0.kind == kind }) {
                #expect(try selector.select(from: devices).kind == kind)
            } else {
                #expect(throws: OpenCLError.self) { try selector.select(from: devices) }
            }
        }

        let automatic = try DeviceSelector.automatic.select(from: devices)
        if devices.contains(where: { $0.kind == .gpu }) {
            #expect(automatic.kind == .gpu)
        } else if devices.contains(where: { $0.kind == .cpu }) {
            #expect(automatic.kind == .cpu)
        }
    }

    @Test func unknownSelectorsGiveAClearError() throws {
        let devices = try Device.all()
        for selector in [DeviceSelector.name("no-such-device-xyz"), .index(devices.count + 5)] {
            let error = #expect(throws: OpenCLError.self) { try selector.select(from: devices) }
            guard case let .noMatchingDevice(name, available)? = error else {
                Issue.record("expected noMatchingDevice, got \(String(describing: error))")
                continue
            }
            #expect(name == selector.description)
            #expect(available.count == devices.count)
            #expect(error?.description.contains("no OpenCL device matches '\(selector)'") == true)
        }
        #expect(throws: OpenCLError.self) { try DeviceSelector.automatic.select(from: []) }
    }
}
