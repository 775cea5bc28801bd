import OpenCLHost

/// `(F + λI)⁻¹` for one λ as an operator of its own (curvlinops' convention: every inverse
/// is an operator too), made by `CurvatureOperator.makeInverse(damping:)`.
///
/// `WoodburySolver` (implicit factors), `CholeskySolver` (dense matrices) and
/// `KroneckerSolver` (K-FAC factors) conform. An inverse holds what it factored, so it
/// stays valid (for the curvature as it was) while the curvature is accumulated into; an
/// instance serves one thread at a time.
public protocol CurvatureInverse<Element>: AnyObject {
    /// The element type of vectors.
    associatedtype Element: DeviceScalar

    /// The context the vectors live in.
    var context: Context { get }
    /// P, the number of parameters.
    var dimension: Int { get }
    /// The direct method this inverse implements (`.woodbury`, `.cholesky`, `.kfac`).
    var method: SolveMethod { get }
    /// The λ it inverts for; nil while nothing has been factored yet (an instance made
    /// without a λ, such as `KroneckerSolver(curvature:)` before its `refresh(damping:)`).
    var damping: Element? { get }

    /// `x = (F + λI)⁻¹ b` for every vector of `b`, with this inverse's λ.
    /// - Throws: `invalidArgument("damping", …)` while `damping` is nil.
    func solve(_ b: VectorBatch<Element>) throws -> VectorBatch<Element>

    /// The float64 factorisation behind the last solve, where there is one: its path
    /// (Cholesky, jitter, eigen) and reciprocal condition estimate. Nil by default.
    var factorization: DenseSymmetricFactorization? { get }

    /// A reciprocal condition estimate of the system `F + λI` this inverse solves, which
    /// may be worse than the factored matrix's own (Woodbury factors an M x M matrix);
    /// by default the factorisation's estimate, nil without one.
    var systemReciprocalCondition: Double? { get }

    /// Re-factors this inverse in place for λ from `curvature` as it is now, when this
    /// inverse was made from that same object and can reuse its buffers and launch plans;
    /// returns false (and changes nothing) otherwise, and the caller makes a new inverse
    /// with `makeInverse(damping:)`. By default false.
    func refresh(from curvature: any CurvatureOperator<Element>, damping: Element) throws -> Bool
}

extension CurvatureInverse {
    /// None.
    public var factorization: DenseSymmetricFactorization? { nil }

    /// The factorisation's reciprocal condition estimate.
    public var systemReciprocalCondition: Double? { factorization?.reciprocalCondition }

    /// False: this inverse cannot be re-factored in place.
    public func refresh(from _: any CurvatureOperator<Element>, damping _: Element) throws -> Bool { false }

    /// The λ, or the error a solve before the first factorisation throws.
    func requireDamping() throws -> Element {
        guard let damping else {
            throw NaturalGradientError.invalidArgument(
                name: "damping", reason: "this \(method.rawValue) inverse has not been factored for a λ yet")
        }
        return damping
    }
}

/// An inverse whose source can be saved, so that a restored optimizer rebuilds exactly the
/// inverse it had (`NaturalGradientOptimizerState.inverse`).
public protocol ExportableInverse<Element>: CurvatureInverse {
    /// The element type of vectors.
    associatedtype Element

    /// The curvature the inverse was factored from, as it was then, and its λ.
    func exportState() throws -> SavedInverse
}
