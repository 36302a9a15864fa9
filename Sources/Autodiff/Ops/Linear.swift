import TensorCore

/// y = x W^T + b.
/// - x: [N, in]; weight: [out, in]; bias: [out]. Returns [N, out].
public func linear(_ x: Variable, weight: Variable, bias: Variable? = nil) -> Variable {
    precondition(x.value.rank == 2, "linear input must be [N, features], got \(x.shape)")
    precondition(weight.value.rank == 2 && weight.shape[1] == x.shape[1],
                 "linear weight \(weight.shape) for input \(x.shape)")
    var y = x.value.matmul(weight.value, transposeOther: true)
    if let bias {
        precondition(bias.shape == [weight.shape[0]], "linear bias \(bias.shape) for weight \(weight.shape)")
        y.addChannelBias(bias.value)
    }
    let (xv, wv) = (x.value, weight.value)
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    return record(y, inputs, saving: [xv, wv]) { gy, needs in
        let needsBias = needs.count > 2 && needs[2]
        var gw: Tensor? = nil, gb: Tensor? = nil
        if needs[1] {
            gw = collectsSampleOrder(weight).map { linearWeightGradientInSampleOrder(gy, xv, leaf: weight, $0) }
                ?? gy.matmul(xv, transposeSelf: true)           // [out, N] x [N, in]
        }
        if needsBias, let bias {
            gb = collectsSampleOrder(bias) != nil
                ? sampleOrderedGradient(gy.scalars, samples: gy.shape[0], shape: [gy.shape[1]], leaf: bias)
                : gy.sumPerChannel()
        }
        return [needs[0] ? gy.matmul(wv) : nil, gw, gb]  // input: [N, out] x [out, in]
    }
}

/// dW[o, j] = sum over samples i of gy[i, o] * x[i, j], each (o, j) added in `SampleTree` order
/// over the samples; the node sums go to `context`. - gy: [N, out]; x: [N, in].
private func linearWeightGradientInSampleOrder(_ gy: Tensor, _ x: Tensor, leaf: Variable,
                                               _ context: SampleOrderedGradients) -> Tensor {
    let (n, outF, inF) = (gy.shape[0], gy.shape[1], x.shape[1])
    precondition(context.samples.count == n,
                 "a parameter gradient over \(n) samples while this rank holds \(context.samples.count) of the batch")
    let nodes = context.nodes
    var sums = [[Float]](repeating: [Float](repeating: 0, count: outF * inF), count: nodes.count)
    gy.withUnsafeBufferPointer { g in
        x.withUnsafeBufferPointer { xp in
            var products = [Float](repeating: 0, count: n * inF)
            products.withUnsafeMutableBufferPointer { p in
                for o in 0..<outF {
                    for i in 0..<n {
                        let (a, row, dst) = (g[i * outF + o], xp.baseAddress! + i * inF, p.baseAddress! + i * inF)
                        for j in 0..<inF { dst[j] = a * row[j] }
                    }
                    for (k, node) in nodes.enumerated() {
                        let first = p.baseAddress! + (node.lowerBound - context.samples.lowerBound) * inF
                        SampleTree.reduceRows(first, node: node, width: inF, stride: inF)
                        sums[k].withUnsafeMutableBufferPointer { (s: inout UnsafeMutableBufferPointer<Float>) in
                            (s.baseAddress! + o * inF).update(from: first, count: inF)
                        }
                    }
                }
            }
        }
    }
    return context.deposit(sums.map { Tensor(shape: [outF, inF], scalars: $0) }, for: leaf)
}
