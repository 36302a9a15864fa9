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
        [needs[0] ? gy.matmul(wv) : nil,                        // [N, out] x [out, in]
         needs[1] ? gy.matmul(xv, transposeSelf: true) : nil,   // [out, N] x [N, in]
         needs.count > 2 && needs[2] ? gy.sumPerChannel() : nil]
    }
}
