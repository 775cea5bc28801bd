import COpenCL

/// An OpenCL platform (one installed driver, seen through the ICD loader).
public struct Platform: Sendable, Hashable {
    /// The platform handle.
    public let id: Handle<cl_platform_id>
    /// `CL_PLATFORM_NAME`, for example "Portable Computing Language".
    public let name: String
    /// `CL_PLATFORM_VENDOR`.
    public let vendor: String
    /// `CL_PLATFORM_VERSION`.
    public let version: String

    init(id: cl_platform_id) throws {
        func query(_ parameter: Int32) -> InfoQuery {
            InfoQuery(function: "clGetPlatformInfo", object: "platform") { size, value, returned in
                clGetPlatformInfo(id, cl_platform_info(parameter), size, value, returned)
            }
        }
        self.id = Handle(id)
        self.name = try query(CL_PLATFORM_NAME).string()
        self.vendor = try query(CL_PLATFORM_VENDOR).string()
        self.version = try query(CL_PLATFORM_VERSION).string()
    }

    /// Every platform the ICD loader knows; empty when none is installed.
    public static func all() throws -> [Platform] {
        var count: cl_uint = 0
        let status = clGetPlatformIDs(0, nil, &count)
        // The ICD loader answers CL_PLATFORM_NOT_FOUND_KHR when no driver is registered.
        if status == -1001 || count == 0 { return [] }
        try check(status, "clGetPlatformIDs", "the ICD loader")
        var ids = [cl_platform_id?](repeating: nil, count: Int(count))
        try check(clGetPlatformIDs(count, &ids, nil), "clGetPlatformIDs", "the ICD loader")
        return try ids.compactMap { $0 }.map(Platform.init(id:))
    }
}

/// A Sendable, Hashable wrapper around an OpenCL handle that the API never frees
/// (platform and device ids) or whose lifetime an owning class manages.
public struct Handle<Pointer: Hashable>: @unchecked Sendable, Hashable {
    /// The raw OpenCL handle.
    public let raw: Pointer
    init(_ raw: Pointer) { self.raw = raw }
}
