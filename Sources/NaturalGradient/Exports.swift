import OpenCLHost

// The host layer's names a caller of the library needs, and no more: a context on a chosen
// device, the buffers and element types data is handed over in, and the errors the host
// layer throws. Programs, kernels, events and raw handles stay behind `OpenCLHost`, which
// only the targets of this package import (`scripts/check-public-surface.sh` checks that a
// client of `NaturalGradient` alone cannot name `Kernel` or `Program`).

/// An OpenCL context and in-order queue on one device: where every buffer and curvature
/// lives (`Context(selector:)`, `Context(device:)`).
public typealias Context = OpenCLHost.Context
/// One OpenCL device and the properties the library tunes its kernels by (`Device.all()`).
public typealias Device = OpenCLHost.Device
/// Which device to use: `cpu`, `gpu`, a platform and device index, or a name fragment
/// (`DeviceSelector(parsing:)`, `NGRAD_DEVICE`).
public typealias DeviceSelector = OpenCLHost.DeviceSelector
/// Whether a context keeps built program binaries in the on-disk cache.
public typealias BinaryCachePolicy = OpenCLHost.BinaryCachePolicy
/// A typed device buffer: upload, download, and the storage of every vector batch and
/// factor.
public typealias Buffer<Element: DeviceElement> = OpenCLHost.Buffer<Element>
/// The element types the kernels compute in: `Float`, and `Double` where the device has
/// `cl_khr_fp64`.
public typealias DeviceScalar = OpenCLHost.DeviceScalar
/// The errors of the host layer: no device, a failed OpenCL call, a bad buffer range.
public typealias OpenCLError = OpenCLHost.OpenCLError
