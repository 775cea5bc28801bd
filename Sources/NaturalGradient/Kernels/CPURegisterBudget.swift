import OpenCLHost

/// What a CPU's vector register file holds, for sizing the CPU defaults' register tiles from
/// the device (`Device.nativeFloatVectorWidth` / `nativeDoubleVectorWidth`) instead of from
/// the machine they were first tuned on.
///
/// The rule every CPU register tile follows: its accumulators plus the operand vectors live
/// at once in one step must fit the vector registers, **accumulators + operands ≤
/// registers**: 16 on AVX2 (and SSE, and 128-bit targets generally), 32 on AVX-512. A tile
/// that needs more spills to the stack, and every FMA then waits on a load and a store (a
/// 16 x 16 float tile, 32 accumulator registers on AVX2, ran 1.54x slower than 4 x 16).
/// A tile that fills every register can still spill: the compiler keeps a few loop
/// invariants of the code around the hot loop in registers too (the accumulation's 6 x 16
/// and the Kronecker product's 4 x 3 tiles on AVX2 each lost an accumulator to the stack),
/// so `units(of:besides:)` leaves one tile row's registers free.
struct CPURegisterBudget: Equatable {
    /// Elements per native vector register, at least 1.
    let lanes: Int
    /// The vector registers the compiler may allocate.
    let registers: Int

    /// The budget of `device` for `Element`: 512-bit vectors (AVX-512) come with 32
    /// registers, narrower ones (AVX2, SSE) with 16.
    init<Element: DeviceScalar>(_ device: Device, element _: Element.Type) {
        let bytes = MemoryLayout<Element>.stride
        lanes = device.nativeVectorWidth(elementBytes: bytes)
        registers = lanes * bytes >= 64 ? 32 : 16
    }

    /// Registers an OpenCL vector of `width` elements occupies (at least one).
    func registers(forWidth width: Int) -> Int { max(1, (width + lanes - 1) / lanes) }

    /// The most tile rows (`unit` registers each: a row's accumulators and the operands it
    /// alone needs) that fit beside `operands` registers every row shares, with one more
    /// row's worth left for what the compiler keeps live across the hot loop.
    func units(of unit: Int, besides operands: Int) -> Int { max(0, (registers - operands - unit) / unit) }
}
