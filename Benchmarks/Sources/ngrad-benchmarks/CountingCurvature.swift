import NaturalGradient

/// An operator that forwards to `base` and counts its products (one per vector of a
/// batch), so that a solve's product count sits beside its iteration count: a CG run to a
/// tolerance spends products on iterations, on the convergence confirmation from x and on
/// residual replacements, and the difference says which.
final class CountingCurvature<Base: CurvatureOperator>: CurvatureOperator {
    typealias Element = Base.Element
    let base: Base
    /// Products (vectors) since the last `reset()`.
    private(set) var products = 0

    init(_ base: Base) { self.base = base }

    var context: Context { base.context }
    var dimension: Int { base.dimension }

    func apply(_ x: VectorBatch<Element>, damping: Element, into y: VectorBatch<Element>) throws {
        products += x.count
        try base.apply(x, damping: damping, into: y)
    }

    func diagonal() throws -> Buffer<Element> { try base.diagonal() }

    func reset() { products = 0 }
}
