import NaturalGradient
// `CurvatureBuilder<Float>` in a public requirement needs Float's DeviceScalar conformance,
// which lives in OpenCLHost (NaturalGradient re-exports the protocol's name, not the module).
import OpenCLHost

/// What `Trainer` needs from a data-parallel job (`ngrad train --distributed`, over MPI):
/// each rank trains on its share of every global mini-batch, and these calls make the
/// ranks' steps one step on the global batch, with bitwise-identical parameters on every
/// rank. The examples target does not depend on MPI; `ngrad` implements this with
/// `NaturalGradientDistributed`'s `Communicator` when it is built with MPI.
public protocol DataParallel: AnyObject {
    /// This process's rank, `0..<size`.
    var rank: Int { get }
    /// The number of ranks.
    var size: Int { get }
    /// The global mean gradient from this rank's mean over its `samples`, the same bits on
    /// every rank (a rank-ordered sum).
    func averageGradient(_ gradient: [Float], samples: Int) throws -> [Float]
    /// `values` summed element-wise over the ranks, the same bits on every rank.
    func sum(_ values: [Double]) throws -> [Double]
    /// A K-FAC curvature builder for `layers` whose statistics are summed over the ranks and
    /// whose inversions are spread over them (KAISA).
    func kfacBuilder(context: Context, layers: [LayerShape]) -> CurvatureBuilder<Float>
    /// Throws, on every rank, unless every rank holds bitwise the same `parameters`.
    func requireIdentical(_ parameters: [Float], step: Int) throws
    /// The bytes this rank has received from the others so far (every collective counted).
    var bytesReceived: Int { get }
}

extension DataParallel {
    /// This rank's share of a global batch of `count` samples: the contiguous range
    /// `rank·count/size ..< (rank+1)·count/size`.
    func share(of count: Int) -> Range<Int> {
        (rank * count / size)..<((rank + 1) * count / size)
    }

    /// The global mean of a per-sample mean `value` over this rank's `samples`.
    func mean(_ value: Double, samples: Int) throws -> Double {
        let sums = try sum([value * Double(samples), Double(samples)])
        return sums[0] / sums[1]
    }
}
