import CNaturalGradient
import NaturalGradient

// EKFAC through the C ABI: created like K-FAC (`ng_kfac_layer` inputs), then applied and
// solved by the generic `ng_curvature_apply` / `ng_solve` (NG_METHOD_KFAC or AUTO is its
// eigenbasis inverse); these calls add what only EKFAC has: its eigenvalues and bases, and
// the accumulate / refresh cycle of a training loop.

/// The EKFAC operator behind a curvature handle, as `E`, or a throw naming `curvature`.
private func ekfac<E: BridgeScalar>(
    _ object: CurvatureObject, _: E.Type
) throws
    -> EigenvalueCorrectedKroneckerCurvature<E>
{
    guard let typed = object as? TypedCurvature<EigenvalueCorrectedKroneckerCurvature<E>> else {
        throw NaturalGradientError.invalidArgument(
            name: "curvature", reason: "is representation \(object.representation), not NG_CURVATURE_EKFAC (6)")
    }
    return typed.curvature
}

/// `layer` as an index into `layers` layers, checked.
private func layerIndex(_ layer: Int64, layers: Int) throws -> Int {
    try check(layer >= 0 && layer < Int64(layers), "layer", "is \(layer), the curvature has \(layers) layers")
    return Int(layer)
}

@_cdecl("ng_curvature_ekfac")
public func ngCurvatureEKFAC(
    _ contextHandle: UInt64, _ dtypeCode: Int32, _ layers: UnsafePointer<ng_kfac_layer>?, _ layerCount: Int64,
    _ samples: Int64, _ weights: UnsafeRawPointer?, _ out: UnsafeMutablePointer<UInt64>?
) -> Int32 {
    layerCurvature(Int32(NG_CURVATURE_EKFAC), contextHandle, dtypeCode, layers, layerCount, samples, weights, out)
}

@_cdecl("ng_ekfac_eigenvalues")
public func ngEKFACEigenvalues(
    _ handle: UInt64, _ layer: Int64, _ values: UnsafeMutablePointer<Double>?, _ length: Int64
) -> Int32 {
    boundary {
        let object = try CurvatureObject.lookup(handle)
        let out = try nonNull(values, "values")
        try object.serialized {
            let eigenvalues: [Double] = try object.dtype.dispatch(
                { try layerEigenvalues(ekfac(object, $0), layer) },
                { try layerEigenvalues(ekfac(object, $0), layer) })
            try check(
                length == Int64(eigenvalues.count), "length",
                "is \(length), layer \(layer) has \(eigenvalues.count) eigenvalues (outputs x inputs)")
            for (index, value) in eigenvalues.enumerated() { out[index] = value }
        }
    }
}

private func layerEigenvalues<E>(
    _ curvature: EigenvalueCorrectedKroneckerCurvature<E>, _ layer: Int64
) throws -> [Double] {
    try curvature.eigenvalues(layerIndex(layer, layers: curvature.layers.count))
}

@_cdecl("ng_ekfac_eigenbasis")
public func ngEKFACEigenbasis(
    _ handle: UInt64, _ layer: Int64, _ basisA: UnsafeMutablePointer<Double>?, _ lengthA: Int64,
    _ basisG: UnsafeMutablePointer<Double>?, _ lengthG: Int64
) -> Int32 {
    boundary {
        let object = try CurvatureObject.lookup(handle)
        let outA = try nonNull(basisA, "basis_a")
        let outG = try nonNull(basisG, "basis_g")
        try object.serialized {
            let (a, g): ([Double], [Double]) = try object.dtype.dispatch(
                { try layerBasis(ekfac(object, $0), layer) },
                { try layerBasis(ekfac(object, $0), layer) })
            try check(
                lengthA == Int64(a.count), "length_a", "is \(lengthA), layer \(layer)'s Q_A has \(a.count) entries (inputs²)")
            try check(
                lengthG == Int64(g.count), "length_g", "is \(lengthG), layer \(layer)'s Q_G has \(g.count) entries (outputs²)")
            for (index, value) in a.enumerated() { outA[index] = value }
            for (index, value) in g.enumerated() { outG[index] = value }
        }
    }
}

private func layerBasis<E>(
    _ curvature: EigenvalueCorrectedKroneckerCurvature<E>, _ layer: Int64
) throws -> ([Double], [Double]) {
    let basis = try curvature.eigenbasis(layerIndex(layer, layers: curvature.layers.count))
    return (basis.a, basis.g)
}

@_cdecl("ng_ekfac_accumulate")
public func ngEKFACAccumulate(
    _ handle: UInt64, _ layers: UnsafePointer<ng_kfac_layer>?, _ layerCount: Int64, _ samples: Int64,
    _ weights: UnsafeRawPointer?, _ alpha: Double, _ beta: Double, _ refreshBasis: Int32
) -> Int32 {
    boundary {
        let object = try CurvatureObject.lookup(handle)
        let n = try count(samples, "samples")
        try check(
            alpha.isNaN || (alpha.isFinite && alpha >= 0), "alpha", "must be NaN (1/samples) or finite and ≥ 0, got \(alpha)")
        try check(beta.isFinite && beta >= 0, "beta", "must be finite and ≥ 0, got \(beta)")
        try check(refreshBasis == 0 || refreshBasis == 1, "refresh_basis", "must be 0 or 1, got \(refreshBasis)")
        func run<E: BridgeScalar>(_: E.Type) throws {
            let curvature = try ekfac(object, E.self)
            let (inputs, w) = try uploadLayers(
                E.self, curvature.context, layerList(layers, layerCount), samples: n, weights: weights)
            let scale: E? = alpha.isNaN ? nil : E(float64: alpha)
            try curvature.accumulate(inputs, samples: n, weights: w, alpha: scale, beta: E(float64: beta))
            guard refreshBasis == 1 else { return }
            // The basis of the averaged factors, then S re-estimated from this batch in it.
            try curvature.refreshEigenbasis()
            try curvature.correctEigenvalues(inputs, samples: n, weights: w)
        }
        try object.serialized { try object.dtype.dispatch({ try run($0) }, { try run($0) }) }
    }
}
