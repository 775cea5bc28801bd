import COpenCL

/// A command's completion event, with the device's profiling timestamps.
public final class Event: @unchecked Sendable {
    let event: cl_event
    let command: String

    init(taking event: cl_event?, from command: String) throws {
        guard let event else {
            throw OpenCLError.callFailed(function: command, status: CL_INVALID_EVENT, object: "the returned event")
        }
        self.event = event
        self.command = command
    }

    deinit { clReleaseEvent(event) }

    /// Blocks until the command has completed.
    public func wait() throws {
        var event: cl_event? = self.event
        try check(clWaitForEvents(1, &event), "clWaitForEvents", command)
    }

    /// Device time in nanoseconds from the command's start to its end (waits for it first).
    public func deviceNanoseconds() throws -> UInt64 {
        let times = try profilingTimes()
        return times.end &- times.start
    }

    /// The queued, start and end timestamps in device nanoseconds (waits for the command).
    public func profilingTimes() throws -> (queued: UInt64, start: UInt64, end: UInt64) {
        try wait()
        func read(_ parameter: Int32) throws -> UInt64 {
            try InfoQuery(function: "clGetEventProfilingInfo", object: command) { size, value, returned in
                clGetEventProfilingInfo(self.event, cl_profiling_info(parameter), size, value, returned)
            }.value(cl_ulong.self)
        }
        return (try read(CL_PROFILING_COMMAND_QUEUED), try read(CL_PROFILING_COMMAND_START), try read(CL_PROFILING_COMMAND_END))
    }
}
