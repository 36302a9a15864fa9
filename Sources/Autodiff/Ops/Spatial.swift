import TensorCore

/// Mean over the spatial positions of each channel.
/// - x: [N, C, H, W]. Returns [N, C, 1, 1].
public func globalAveragePool(_ x: Variable) -> Variable {
    let s = x.shape
    precondition(s.count == 4, "global average pool input must be [N, C, H, W], got \(s)")
    let hw = s[2] * s[3]
    var y = Tensor(uninitializedShape: [s[0], s[1], 1, 1])
    x.value.withUnsafeBufferPointer { p in
        y.withUnsafeMutableBufferPointer { o in
            for i in 0..<(s[0] * s[1]) {
                var acc: Float = 0
                for j in 0..<hw { acc += p[i * hw + j] }
                o[i] = acc / Float(hw)
            }
        }
    }
    return record(y, [x]) { gy, _ in
        var gx = Tensor(uninitializedShape: s)
        gy.withUnsafeBufferPointer { g in
            gx.withUnsafeMutableBufferPointer { d in
                for i in 0..<(s[0] * s[1]) {
                    let v = g[i] / Float(hw)
                    for j in 0..<hw { d[i * hw + j] = v }
                }
            }
        }
        return [gx]
    }
}

/// Nearest-neighbour upsampling by 2 in both spatial axes.
/// - x: [N, C, H, W]. Returns [N, C, 2H, 2W].
public func upsampleNearest2x(_ x: Variable) -> Variable {
    let s = x.shape
    precondition(s.count == 4, "upsample input must be [N, C, H, W], got \(s)")
    let (h, w) = (s[2], s[3])
    var y = Tensor(uninitializedShape: [s[0], s[1], 2 * h, 2 * w])
    x.value.withUnsafeBufferPointer { p in
        y.withUnsafeMutableBufferPointer { o in
            for plane in 0..<(s[0] * s[1]) {
                let src = p.baseAddress! + plane * h * w
                let dst = o.baseAddress! + plane * 4 * h * w
                for i in 0..<h {
                    let row = dst + 2 * i * 2 * w
                    for j in 0..<w { row[2 * j] = src[i * w + j]; row[2 * j + 1] = src[i * w + j] }
                    (row + 2 * w).update(from: row, count: 2 * w)
                }
            }
        }
    }
    return record(y, [x]) { gy, _ in
        var gx = Tensor(uninitializedShape: s)
        gy.withUnsafeBufferPointer { g in
            gx.withUnsafeMutableBufferPointer { d in
                for plane in 0..<(s[0] * s[1]) {
                    let src = g.baseAddress! + plane * 4 * h * w
                    for i in 0..<h {
                        for j in 0..<w {
                            let top = src + 2 * i * 2 * w + 2 * j
                            d[plane * h * w + i * w + j] = top[0] + top[1] + top[2 * w] + top[2 * w + 1]
                        }
                    }
                }
            }
        }
        return [gx]
    }
}
