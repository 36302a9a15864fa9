import TensorCore

/// 2-D convolution, NCHW / OIHW.
/// - x: [N, C, H, W]; weight: [O, C, k, k]; bias: [O]. Returns [N, O, Ho, Wo].
public func conv2d(_ x: Variable, weight: Variable, bias: Variable? = nil,
                   stride: Int = 1, padding: Int = 0) -> Variable {
    let y = conv2dForward(x.value, weight: weight.value, bias: bias?.value, stride: stride, padding: padding)
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    let (xv, wv) = (x.value, weight.value)
    return record(y, inputs, saving: [xv, wv]) { gy, needs in
        let g = conv2dBackward(xv, weight: wv, gradOutput: gy, stride: stride, padding: padding,
                               needInput: needs[0], needWeight: needs[1],
                               needBias: needs.count > 2 && needs[2])
        return [g.input, g.weight, g.bias]
    }
}
