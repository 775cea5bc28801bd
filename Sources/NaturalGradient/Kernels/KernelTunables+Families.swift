import OpenCLHost

// One tunables struct per kernel file. The coding keys are the files' define names; the
// `#ifndef` defaults in the `.cl` files are only fallbacks for a build without the host.

/// The size of one element in bytes (local-memory rules).
private func elementBytes<Element: DeviceScalar>(_: Element.Type) -> Int { MemoryLayout<Element>.stride }

/// One native vector register of `Element` as an OpenCL vector width (2, 4, 8 or 16).
private func nativeVectorWidth<Element: DeviceScalar>(_ device: Device, _ element: Element.Type) -> Int {
    min(16, max(2, largestPowerOfTwo(atMost: CPURegisterBudget(device, element: element).lanes)))
}

/// Two native vectors, at most 16 lanes: for the streaming kernels (implicit product, CG's
/// vector operations), which hold few accumulators, so the longer vector only puts more loads
/// in flight (AVX2, (1024, 65536) float: the implicit product at VW=8 was 13-26% slower than
/// 16 in four alternated runs; AVX-512 was tuned at 16, which this also gives).
private func streamingVectorWidth<Element: DeviceScalar>(_ device: Device, _ element: Element.Type) -> Int {
    min(16, 2 * nativeVectorWidth(device, element))
}

/// The default work-group size of the families with a fixed (`reqd_work_group_size`) one.
private func familyGroupSize(_ device: Device) -> Int { largestPowerOfTwo(atMost: min(256, device.maxWorkGroupSize)) }

/// Every power of two the device's work-groups can hold.
private func groupSizes(_ device: Device) -> [Int] { powersOfTwo(1...max(1, device.maxWorkGroupSize)) }

/// A rule that `bytes` of local memory per work-group fit the device.
private func localMemoryViolation(_ bytes: Int, _ what: String, _ device: Device) -> String? {
    UInt64(bytes) <= device.localMemoryBytes
        ? nil : "\(what) needs \(bytes) bytes of local memory, \(device.name) has \(device.localMemoryBytes)"
}

/// `Vector.cl`: element-wise kernels without tunables.
public struct VectorTunables: KernelTunables {
    public static var family: KernelFamily { .vector }
    public init() {}
    public static func defaults<Element: DeviceScalar>(for _: Device, element _: Element.Type) -> Self { Self() }
    public static func admittedValues<Element: DeviceScalar>(on _: Device, element _: Element.Type) -> [TunableValues] { [] }
}

/// `SimilarityFactors.cl`: one work-item per row, no tunables.
public struct SimilarityFactorTunables: KernelTunables {
    public static var family: KernelFamily { .similarityFactors }
    public init() {}
    public static func defaults<Element: DeviceScalar>(for _: Device, element _: Element.Type) -> Self { Self() }
    public static func admittedValues<Element: DeviceScalar>(on _: Device, element _: Element.Type) -> [TunableValues] { [] }
}

/// `Reduction.cl`: the two-stage dot product's work-group size.
public struct ReductionTunables: KernelTunables {
    public static var family: KernelFamily { .reduction }
    /// `WGS`: work-items per group, a power of two.
    public var groupSize: Int

    enum CodingKeys: String, CodingKey { case groupSize = "WGS" }

    public init(groupSize: Int) { self.groupSize = groupSize }

    public static func defaults<Element: DeviceScalar>(for device: Device, element _: Element.Type) -> Self {
        Self(groupSize: familyGroupSize(device))
    }

    public static func admittedValues<Element: DeviceScalar>(on device: Device, element _: Element.Type) -> [TunableValues] {
        [TunableValues("WGS", groupSizes(device))]
    }

    public func crossRuleViolation<Element: DeviceScalar>(on device: Device, element: Element.Type) -> String? {
        localMemoryViolation(groupSize * elementBytes(element), "WGS=\(groupSize)", device)
    }
}

/// `ConjugateGradient.cl`: the fused CG updates and dot products.
public struct ConjugateGradientTunables: KernelTunables {
    public static var family: KernelFamily { .conjugateGradient }
    /// `WGS`: work-items per group, a power of two.
    public var groupSize: Int
    /// `CONTIGUOUS`: 1 gives each work-item a contiguous run of vectors (CPUs), 0 interleaves (GPUs).
    public var contiguous: Int
    /// `VW`: the vector width of contiguous runs.
    public var vectorWidth: Int

    enum CodingKeys: String, CodingKey {
        case groupSize = "WGS", contiguous = "CONTIGUOUS", vectorWidth = "VW"
    }

    public init(groupSize: Int, contiguous: Int, vectorWidth: Int) {
        (self.groupSize, self.contiguous, self.vectorWidth) = (groupSize, contiguous, vectorWidth)
    }

    /// CPUs: contiguous runs of vectors per work-item (the interleaved loop ran scalar on
    /// PoCL), `streamingVectorWidth` wide (16 floats on AVX2 and AVX-512); GPUs interleave
    /// items for coalesced access.
    public static func defaults<Element: DeviceScalar>(for device: Device, element: Element.Type) -> Self {
        let cpu = device.kind == .cpu
        return Self(
            groupSize: familyGroupSize(device), contiguous: cpu ? 1 : 0,
            vectorWidth: cpu ? streamingVectorWidth(device, element) : 1)
    }

    public static func admittedValues<Element: DeviceScalar>(on device: Device, element _: Element.Type) -> [TunableValues] {
        [TunableValues("WGS", groupSizes(device)), TunableValues("CONTIGUOUS", [0, 1]), TunableValues("VW", [1, 2, 4, 8, 16])]
    }

    public func crossRuleViolation<Element: DeviceScalar>(on device: Device, element: Element.Type) -> String? {
        localMemoryViolation(4 * groupSize * elementBytes(element), "WGS=\(groupSize)", device)
    }
}

/// `FisherAccumulation.cl`: the RM x VW micro-tile, the item block of MT x NT micro-tiles
/// one work-item computes, and the k-block KC it walks the factor rows in.
public struct FisherAccumulationTunables: KernelTunables {
    public static var family: KernelFamily { .fisherAccumulation }
    /// `RM`: rows of a micro-tile.
    public var rows: Int
    /// `VW`: columns of a micro-tile, an OpenCL vector width.
    public var columns: Int
    /// `MT`: micro-tiles of a work-item's block along the rows.
    public var itemTiles: Int
    /// `NT`: strips of VW columns of a work-item's block.
    public var itemStrips: Int
    /// `KC`: factor rows per k-block; 0 sums all rows in one block.
    public var depth: Int

    enum CodingKeys: String, CodingKey {
        case rows = "RM", columns = "VW", itemTiles = "MT", itemStrips = "NT", depth = "KC"
    }

    public init(rows: Int, columns: Int, itemTiles: Int = 1, itemStrips: Int = 1, depth: Int = 0) {
        (self.rows, self.columns, self.itemTiles, self.itemStrips, self.depth) = (rows, columns, itemTiles, itemStrips, depth)
    }

    /// CPUs (BLIS's register and cache blocking, sized from the native vector width):
    /// VW = two native vectors (at most 16 elements), and as many rows as the register rule
    /// allows with one VW-vector left free: RM·v accumulators + v for the strip's vector + 1
    /// broadcast + v spare ≤ registers, with v = VW / lanes (`CPURegisterBudget`). The spare
    /// is the compiler's: LLVM keeps values of the tile's epilogue (the splat of alpha, a
    /// vector of store indices) live across the k loop, so on AVX2 the 6 x 16 float tile
    /// (12 + 2 + 1 = 15 of 16 ymm) spilled one accumulator, a load-FMA-store chain through
    /// the stack every k (PoCL's compiled loop read back with objdump): 12.6 cycles per k
    /// instead of 6, 74 GFLOP/s at (1024, 4096), 0.44x ssyrk; 5 x 16 ran at 129-138 GFLOP/s,
    /// 0.78-0.82x (Benchmarks/NOTES.md, 2026-12-03). AVX2 float 5 x 16, double 5 x 8;
    /// AVX-512 float 16 x 16 (the tile measured at 124 GFLOP/s there), double 13 x 16. An
    /// item block of about 64 x 64 elements and k-blocks of 256
    /// rows, so one strip's k-block (16 KiB) stays in L1 and the item's (64 + 64) x 256
    /// working set in L2 however many rows the factor has. GPUs: a 4 x 4 register tile per
    /// work-item over all rows (MT = NT = 1, KC = 0), since 256 accumulators would spill.
    public static func defaults<Element: DeviceScalar>(for device: Device, element: Element.Type) -> Self {
        guard device.kind == .cpu else { return Self(rows: 4, columns: 4) }
        let budget = CPURegisterBudget(device, element: element)
        let columns = min(16, max(2, 2 * budget.lanes))
        let perRow = budget.registers(forWidth: columns)
        let rows = max(1, min(16, budget.units(of: perRow, besides: perRow + 1)))
        return Self(rows: rows, columns: columns, itemTiles: max(1, 64 / rows), itemStrips: max(1, 64 / columns), depth: 256)
    }

    public static func admittedValues<Element: DeviceScalar>(on _: Device, element _: Element.Type) -> [TunableValues] {
        [
            TunableValues("RM", Array(1...16)), TunableValues("VW", [2, 4, 8, 16]), TunableValues("MT", Array(1...64)),
            TunableValues("NT", Array(1...32)), TunableValues("KC", [0] + powersOfTwo(1...4096)),
        ]
    }

    public static func searchSpace<Element: DeviceScalar>(for device: Device, element: Element.Type) -> [Self] {
        let base = defaults(for: device, element: element)
        var space = [base]
        func add(_ candidate: Self) { if !space.contains(candidate) { space.append(candidate) } }
        for (rows, columns) in [(4, 16), (6, 16), (8, 8), (8, 16), (16, 16), (6, 8), (4, 8)] {
            var candidate = base
            (candidate.rows, candidate.columns) = (rows, columns)
            (candidate.itemTiles, candidate.itemStrips) = (max(1, 64 / rows), max(1, 64 / columns))
            add(candidate)
        }
        for depth in [0, 128, 512] {
            var candidate = base
            candidate.depth = depth
            add(candidate)
        }
        return space
    }
}

/// `CurvatureProducts.cl`: the implicit, block-dense and Woodbury row products.
public struct CurvatureProductTunables: KernelTunables {
    public static var family: KernelFamily { .curvatureProducts }
    /// `WGS`: work-items per group of the row-reducing kernels, a power of two.
    public var groupSize: Int
    /// `VW`: vector width of the column loops.
    public var vectorWidth: Int
    /// `CONTIGUOUS`: 1 gives each work-item a contiguous run of column vectors (CPUs).
    public var contiguous: Int
    /// `REVERSE`: 1 (with `CONTIGUOUS`) sweeps the implicit update backwards.
    public var reverse: Int
    /// `RB`: factor rows per block of the implicit product; nil: chosen per problem from
    /// the cache sizes (see `ImplicitProduct`).
    public var rowBlock: Int?
    /// `DRB`: rows per work-group of `block_dense_product`.
    public var denseRows: Int
    /// `DWGS`: work-items per group of `block_dense_product`, a power of two.
    public var denseGroupSize: Int
    /// `GROUPS` (host): work-groups per implicit-product pass; nil: from the problem size.
    public var groups: Int?

    enum CodingKeys: String, CodingKey {
        case groupSize = "WGS", vectorWidth = "VW", contiguous = "CONTIGUOUS", reverse = "REVERSE", rowBlock = "RB"
        case denseRows = "DRB", denseGroupSize = "DWGS", groups = "GROUPS"
    }

    public init(
        groupSize: Int, vectorWidth: Int, contiguous: Int, reverse: Int, rowBlock: Int? = nil, denseRows: Int,
        denseGroupSize: Int, groups: Int? = nil
    ) {
        (self.groupSize, self.vectorWidth, self.contiguous, self.reverse) = (groupSize, vectorWidth, contiguous, reverse)
        (self.rowBlock, self.denseRows, self.denseGroupSize, self.groups) = (rowBlock, denseRows, denseGroupSize, groups)
    }

    public static var hostParameters: Set<String> { ["GROUPS"] }

    /// The most right-hand sides one pass handles (`KB`, set per plan by the host).
    static let maxVectorsPerPass = 8

    /// CPUs stream a contiguous run of columns per work-item (PoCL runs a group's items one
    /// after another) and sweep the update backwards, so the rows it re-reads were the dot
    /// phase's last (shortest reuse distance in L2: +0-13% at P = 100000); GPUs interleave
    /// items for coalesced loads. block_dense_product: DRB rows per group (CPUs 16: 8
    /// measured 0.12-0.67x ssymv, 16 0.52-0.99x in one busy run); on CPUs 16 items (a row is
    /// a few kilobytes, so 256 items would each get less than one vector), on GPUs the
    /// family's group size and 2 rows. The CPU vector width is `streamingVectorWidth`.
    /// On CPUs the implicit product's group is 64 items (each then streams a run of P/64
    /// columns; interleaved A/B on the 2-vCPU Zen 3, 30-60 rounds in either order: 4-7%
    /// faster than 256 at (1024, 65536), 2-7% at (512, 100000), and `ngrad tune` picked 64
    /// at (512, 65536)), held to the work-group stack (`CPUWorkGroupStack`): fewer for wide
    /// vectors on a small stack.
    public static func defaults<Element: DeviceScalar>(for device: Device, element: Element.Type) -> Self {
        let cpu = device.kind == .cpu
        let vectorWidth = cpu ? streamingVectorWidth(device, element) : 4
        let groupSize =
            cpu
            ? CPUWorkGroupStack.largestGroup(
                atMost: min(64, familyGroupSize(device)),
                itemBytes: implicitProductItemBytes(rowBlock: nil, vectorWidth: vectorWidth, element: element),
                device: device)
            : familyGroupSize(device)
        return Self(
            groupSize: groupSize, vectorWidth: vectorWidth, contiguous: cpu ? 1 : 0, reverse: cpu ? 1 : 0,
            denseRows: cpu ? 16 : 2, denseGroupSize: cpu ? min(16, groupSize) : groupSize)
    }

    public static func admittedValues<Element: DeviceScalar>(on device: Device, element _: Element.Type) -> [TunableValues] {
        [
            TunableValues("WGS", groupSizes(device)), TunableValues("VW", [1, 2, 4, 8, 16]),
            TunableValues("CONTIGUOUS", [0, 1]), TunableValues("REVERSE", [0, 1]), TunableValues("RB", Array(1...16)),
            TunableValues("DRB", Array(1...32)), TunableValues("DWGS", groupSizes(device)),
            TunableValues("GROUPS", Array(1...4096)),
        ]
    }

    /// Local scratch: RB·KB·WGS (+ RB·KB) of the implicit product and DRB·KB·DWGS of the
    /// dense product, at the largest KB a pass uses. Without an `RB` the plan takes at most
    /// `maximum / KB` rows per block, so RB·KB is at most `maximum` (charging 8 x 8 refused
    /// the GPU defaults on 48 KiB of local memory: 65,792 bytes at WGS = 256).
    public func crossRuleViolation<Element: DeviceScalar>(on device: Device, element: Element.Type) -> String? {
        let kb = Self.maxVectorsPerPass
        let rbkb = rowBlock.map { $0 * kb } ?? ImplicitProductRowBlock.maximum
        let shape = rowBlock.map { "RB=\($0) x KB=\(kb)" } ?? "RB·KB=\(rbkb)"
        return localMemoryViolation(
            (rbkb * groupSize + rbkb) * elementBytes(element), "\(shape) x WGS=\(groupSize)", device)
            ?? localMemoryViolation(
                denseRows * kb * denseGroupSize * elementBytes(element),
                "DRB=\(denseRows) x KB=\(kb) x DWGS=\(denseGroupSize)", device)
            ?? CPUWorkGroupStack.violation(
                groupSize: groupSize,
                itemBytes: Self.implicitProductItemBytes(rowBlock: rowBlock, vectorWidth: vectorWidth, element: element),
                "implicit_product_partial at \(shape), VW=\(vectorWidth), WGS=\(groupSize)", device: device)
            ?? CPUWorkGroupStack.violation(
                groupSize: denseGroupSize, itemBytes: denseProductItemBytes(element),
                "block_dense_product at DRB=\(denseRows), KB=\(kb), VW=\(vectorWidth), DWGS=\(denseGroupSize)",
                device: device)
    }

    /// The private bytes of one `implicit_product_partial` item at the largest KB: the
    /// RB x KB dot accumulators and the KB-vector operands, twice (the kernel has a full-block
    /// and a partial-block copy of each phase, and PoCL 3.1 kept both: this count matched the
    /// measured stack at RB = 16), plus 64 bytes of scalars.
    static func implicitProductItemBytes<Element: DeviceScalar>(
        rowBlock: Int?, vectorWidth: Int, element: Element.Type
    ) -> Int {
        let kb = maxVectorsPerPass
        let rbkb = rowBlock.map { $0 * kb } ?? ImplicitProductRowBlock.maximum
        return 2 * (rbkb + 2 * kb) * vectorWidth * elementBytes(element) + 64
    }

    /// The private bytes of one `block_dense_product` item at the largest KB: the DRB x KB
    /// accumulators, the KB x-vectors, the DRB row pointers, plus 64 bytes of scalars.
    func denseProductItemBytes<Element: DeviceScalar>(_ element: Element.Type) -> Int {
        let kb = Self.maxVectorsPerPass
        return (denseRows * kb + kb) * vectorWidth * elementBytes(element) + denseRows * 8 + 64
    }

    /// The implicit product's work-group size and groups per pass.
    public static func searchSpace<Element: DeviceScalar>(for device: Device, element: Element.Type) -> [Self] {
        let base = defaults(for: device, element: element)
        var space = [base]
        for groupSize in [64, 128, 256] where groupSize <= device.maxWorkGroupSize {
            for groups in [8, 32, 128] {
                var candidate = base
                (candidate.groupSize, candidate.groups) = (groupSize, groups)
                if candidate != base { space.append(candidate) }
            }
        }
        return space
    }
}

/// The implicit product's row-block bounds (shared by the plan and the local-memory rule).
enum ImplicitProductRowBlock {
    /// The most rows per block the plan chooses by itself.
    static let maximum = 8
}

/// `Kronecker.cl`: the TM x TN group tile of `(S + γI) Rᵀ` (CLBlast's xgemm shape).
public struct KroneckerTunables: KernelTunables {
    public static var family: KernelFamily { .kronecker }
    /// `LOCAL_TILES`: 1 stages k-slices in local memory (GPUs), 0 streams from global memory (CPUs).
    public var localTiles: Int
    /// `RM`, `RN`: a work-item's register tile.
    public var tileRows: Int
    public var tileColumns: Int
    /// `WGX`, `WGY`: work-items of a group along the result's columns and rows.
    public var groupColumns: Int
    public var groupRows: Int
    /// `VW`: vector width along k without local tiles.
    public var vectorWidth: Int
    /// `KT`: the k-slice staged in local memory with local tiles.
    public var slice: Int

    enum CodingKeys: String, CodingKey {
        case localTiles = "LOCAL_TILES", tileRows = "RM", tileColumns = "RN", groupColumns = "WGX", groupRows = "WGY"
        case vectorWidth = "VW", slice = "KT"
    }

    public init(
        localTiles: Int, tileRows: Int, tileColumns: Int, groupColumns: Int, groupRows: Int, vectorWidth: Int, slice: Int
    ) {
        (self.localTiles, self.tileRows, self.tileColumns) = (localTiles, tileRows, tileColumns)
        (self.groupColumns, self.groupRows, self.vectorWidth, self.slice) = (groupColumns, groupRows, vectorWidth, slice)
    }

    /// Work-items per group.
    var groupSize: Int { groupColumns * groupRows }

    /// CPUs: each work-item streams RM rows of S and RN rows of R along k in native vectors
    /// (`CPURegisterBudget`), 128 items per group so a group's 32 + 64 rows stay in L2. The
    /// register rule: RM·RN accumulators + RN vectors of R + 1 of S, and one more column's
    /// RM + 1 left free (`CPURegisterBudget.units`), so 4 x 4 with 32 registers (AVX-512:
    /// 16 + 4 + 1 + 5, the tile tuned there) and 4 x 2 with 16 (AVX2: 8 + 2 + 1 + 5). The
    /// 4 x 3 tile (12 + 3 + 1, every ymm) stored and reloaded one accumulator through the
    /// stack every k (PoCL's compiled `kronecker_right`, read back with objdump), and 4 x 2
    /// ran 1.4x faster at layers 1024x1025, 512x1025, 10x513 (Benchmarks/NOTES.md,
    /// 2026-12-03); 4 x 4 of 512-bit vectors needed 40 ymm and spilled worse.
    /// GPUs: 64 x 64 group tiles staged in local memory in k-slices of 16, 4 x 4 scalars per
    /// item (CLBlast's xgemm shape), fewer items where the device caps the group size.
    public static func defaults<Element: DeviceScalar>(for device: Device, element: Element.Type) -> Self {
        guard device.kind == .cpu else {
            let rows = min(16, max(1, largestPowerOfTwo(atMost: max(16, device.maxWorkGroupSize)) / 16))
            return Self(localTiles: 1, tileRows: 4, tileColumns: 4, groupColumns: 16, groupRows: rows, vectorWidth: 16, slice: 16)
        }
        let budget = CPURegisterBudget(device, element: element)
        let width = min(16, max(2, budget.lanes))
        // A column of the 4-row tile: 4 accumulators and its vector of R; S's vector is shared.
        let tileColumns = max(1, min(4, budget.units(of: 5, besides: 1)))
        return Self(
            localTiles: 0, tileRows: 4, tileColumns: tileColumns, groupColumns: 16, groupRows: 8, vectorWidth: width,
            slice: 16)
    }

    public static func admittedValues<Element: DeviceScalar>(on _: Device, element _: Element.Type) -> [TunableValues] {
        [
            TunableValues("LOCAL_TILES", [0, 1]), TunableValues("RM", Array(1...8)), TunableValues("RN", Array(1...8)),
            TunableValues("WGX", powersOfTwo(1...32)), TunableValues("WGY", powersOfTwo(1...32)),
            TunableValues("VW", [2, 4, 8, 16]), TunableValues("KT", Array(1...32)),
        ]
    }

    public func crossRuleViolation<Element: DeviceScalar>(on device: Device, element: Element.Type) -> String? {
        if groupSize > device.maxWorkGroupSize {
            return "WGX=\(groupColumns) x WGY=\(groupRows) exceeds \(device.name)'s \(device.maxWorkGroupSize) work-items"
        }
        guard localTiles == 1 else { return nil }
        // Only the local-tile path has a barrier (see `CPUWorkGroupStack`): its RM x RN sums
        // and the RM + RN operands of a k step, plus 64 bytes of scalars, per item.
        let itemBytes = (tileRows * tileColumns + tileRows + tileColumns) * elementBytes(element) + 64
        return localMemoryViolation(
            (groupRows * tileRows + groupColumns * tileColumns) * slice * elementBytes(element), "the local tiles", device)
            ?? CPUWorkGroupStack.violation(
                groupSize: groupSize, itemBytes: itemBytes,
                "LOCAL_TILES=1 at RM=\(tileRows) x RN=\(tileColumns), WGX=\(groupColumns) x WGY=\(groupRows)",
                device: device)
    }
}

extension KernelFamily {
    /// The family's tunables type.
    var tunablesType: any KernelTunables.Type {
        switch self {
        case .vector: VectorTunables.self
        case .reduction: ReductionTunables.self
        case .fisherAccumulation: FisherAccumulationTunables.self
        case .curvatureProducts: CurvatureProductTunables.self
        case .kronecker: KroneckerTunables.self
        case .similarityFactors: SimilarityFactorTunables.self
        case .conjugateGradient: ConjugateGradientTunables.self
        }
    }
}
