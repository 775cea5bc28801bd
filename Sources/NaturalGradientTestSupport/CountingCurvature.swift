import NaturalGradient

/// An operator that forwards to `base` and counts its products (one per vector of a
/// batch), so that a solve's product count sits beside its iteration count: a CG run to a
/// tolerance spends products on iterations, on the convergence confirmation from x and on
/// residual replacements, and the difference says which.
public final class CountingCurvature<Base: CurvatureOperator>: CurvatureOperator {
    public typealias Element = Base.Element
    /// The operator every call goes to.
    public let base: Base
    /// Products (vectors) since the last `reset()`.
    public private(set) var products = 0

    /// Counts the products of `base`.
    public init(_ base: Base) { self.base = base }

    /// `base`'s context.
    public var context: Context { base.context }
    /// `base`'s dimension.
    public var dimension: Int { base.dimension }

    /// `base.apply`, counting `x.count` products.
    public func apply(_ x: VectorBatch<Element>, damping: Element, into y: VectorBatch<Element>) throws {
        products += x.count
        try base.apply(x, damping: damping, into: y)
    }

    /// `base.diagonal()` (not counted).
    public func diagonal() throws -> Buffer<Element> { try base.diagonal() }

    /// Sets the count back to zero.
    public func reset() { products = 0 }
}
