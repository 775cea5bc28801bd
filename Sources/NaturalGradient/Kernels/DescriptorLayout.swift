/// The layout of a descriptor table, the `ulong` rows the host writes and a kernel reads:
/// one Swift definition, emitted to the kernel as defines (`<PREFIX>_<FIELD>` = the
/// field's index, `<PREFIX>_FIELDS` = the row length), so the host and the `.cl` file can
/// never disagree about positions. The cases, in order, are the fields; a case's raw value
/// is its define suffix.
protocol DescriptorLayout: CaseIterable, RawRepresentable<String> where AllCases == [Self] {
    /// The define prefix, e.g. `BLOCK`.
    static var prefix: String { get }
}

extension DescriptorLayout {
    /// The defines a kernel build needs for this table.
    static var defines: [String: Int] {
        var defines = ["\(prefix)_FIELDS": allCases.count]
        for (index, field) in allCases.enumerated() { defines["\(prefix)_\(field.rawValue)"] = index }
        return defines
    }

    /// One row: `value(field)` for every field in order (an exhaustive switch in `value`
    /// keeps the host in step with the layout).
    static func row(_ value: (Self) -> UInt64) -> [UInt64] { allCases.map(value) }
}

/// `FisherAccumulation.cl`'s block table (one row per accumulation block).
enum AccumulationBlockField: String, DescriptorLayout {
    static var prefix: String { "BLOCK" }
    /// Where the block's factor slice starts; its row and column strides.
    case factorOffset = "U_OFFSET", rowStride = "LDU"
    /// Rows and columns of the slice.
    case rows = "ROWS", dimension = "DIM"
    /// Where the block's F starts.
    case outputOffset = "F_OFFSET"
    /// Where the block's weights start, or `UInt64.max` (unweighted).
    case weightOffset = "W_OFFSET"
    /// Where the block's packed strips start.
    case packOffset = "PACK_OFFSET"
    /// The column stride (1 for U; M reads Uᵀ of a row-major M x P matrix).
    case columnStride = "LDC"
}

/// `CurvatureProducts.cl`'s dense-block table of `block_dense_product`.
enum DenseBlockField: String, DescriptorLayout {
    static var prefix: String { "DENSE" }
    case offset = "OFFSET", size = "SIZE", matrixOffset = "F_OFFSET"
}

/// `Kronecker.cl`'s layer table.
enum KroneckerLayerField: String, DescriptorLayout {
    static var prefix: String { "LAYER" }
    /// The layer's first parameter in each vector; G's rows and A's rows.
    case parameterOffset = "V_OFFSET", outputs = "ROWS", inputs = "COLS"
    /// Where G and A start in the factor buffer.
    case gOffset = "G_OFFSET", aOffset = "A_OFFSET"
    /// The layer's first group in the right and the left stage's launch.
    case rightGroup = "RIGHT_GROUP", leftGroup = "LEFT_GROUP"
}
