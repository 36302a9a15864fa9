import TensorCore

/// 2-D convolution, NCHW / OIHW.
/// - x: [N, C, H, W]; weight: [O, C, k, k]; bias: [O]. Returns [N, O, Ho, Wo].
public func conv2d(_ x: Variable, weight: Variable, bias: Variable? = nil,
                   stride: Int = 1, padding: Int = 0) -> Variable {
    let y = conv2dForward(x.value, weight: weight.value, bias: bias?.value, stride: stride, padding: padding)
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    let (xv, wv) = (x.value, weight.value)
    return record(y, inputs, saving: [xv, wv]) { gy, needs in
        // Parameters whose gradient must be added up in sample order take each image's own.
        let orderedWeight = needs[1] && collectsSampleOrder(weight) != nil
        let orderedBias = needs.count > 2 && needs[2] && collectsSampleOrder(bias) != nil
        var g = conv2dBackward(xv, weight: wv, gradOutput: gy, stride: stride, padding: padding,
                               needInput: needs[0], needWeight: needs[1] && !orderedWeight,
                               needBias: needs.count > 2 && needs[2] && !orderedBias)
        let n = xv.shape[0]
        if orderedWeight {
            let rows = UnsafeMutablePointer<Float>.allocate(capacity: n * wv.count)
            defer { rows.deallocate() }
            conv2dWeightGradientPerImage(xv, weightShape: wv.shape, gradOutput: gy, stride: stride, padding: padding, into: rows)
            g.weight = sampleOrderedGradient(rows, samples: n, shape: wv.shape, leaf: weight)
        }
        if orderedBias, let bias {
            let o = wv.shape[0]
            let sums = gy.channelSumsPerSample()   // per image: sums (O), squares (O)
            let rows = (0..<(n * o)).map { Float(sums[($0 / o) * 2 * o + $0 % o]) }
            g.bias = sampleOrderedGradient(rows, samples: n, shape: [o], leaf: bias)
        }
        return [g.input, g.weight, g.bias]
    }
}
