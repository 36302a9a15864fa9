import TensorCore
#if canImport(Glibc)
import Glibc
#endif

/// Row-wise softmax of logits / temperature. - logits: [N, K].
func softmaxRows(_ logits: Tensor, temperature: Float = 1) -> Tensor {
    let (n, k) = (logits.shape[0], logits.shape[1])
    var p = Tensor(uninitializedShape: logits.shape)
    logits.withUnsafeBufferPointer { l in
        p.withUnsafeMutableBufferPointer { o in
            for r in 0..<n {
                var m = -Float.infinity
                for j in 0..<k { m = Swift.max(m, l[r * k + j] / temperature) }
                var s: Float = 0
                for j in 0..<k { let e = expf(l[r * k + j] / temperature - m); o[r * k + j] = e; s += e }
                for j in 0..<k { o[r * k + j] /= s }
            }
        }
    }
    return p
}

/// Mean cross-entropy of logits against integer labels.
/// - logits: [N, K]; labels: N values in 0..<K. Returns a scalar.
public func crossEntropy(_ logits: Variable, labels: [Int]) -> Variable {
    precondition(logits.value.rank == 2 && logits.shape[0] == labels.count,
                 "cross-entropy: logits \(logits.shape) for \(labels.count) labels")
    let (n, k) = (logits.shape[0], logits.shape[1])
    for y in labels { precondition(y >= 0 && y < k, "label \(y) outside 0..<\(k)") }
    let p = softmaxRows(logits.value)
    var loss: Double = 0
    p.withUnsafeBufferPointer { pp in
        for (r, y) in labels.enumerated() { loss -= Double(logf(Swift.max(pp[r * k + y], .leastNormalMagnitude))) }
    }
    return record(Tensor.scalar(Float(loss / Double(n))), [logits], saving: [p]) { gy, _ in
        var g = p
        let s = gy.item / Float(n)
        g.withUnsafeMutableBufferPointer { d in
            for (r, y) in labels.enumerated() { d[r * k + y] -= 1 }
            for i in 0..<d.count { d[i] *= s }
        }
        return [g]
    }
}

/// Knowledge-distillation loss: KL(softmax(t/T) || softmax(s/T)) summed over classes, averaged
/// over the batch, times T^2 (Hinton's scaling, so gradients keep their size as T changes).
/// - student, teacher: [N, K]. Gradients reach both if they ask.
public func distillationLoss(student: Variable, teacher: Variable, temperature: Float) -> Variable {
    precondition(student.shape == teacher.shape && student.value.rank == 2,
                 "distillation: student \(student.shape) vs teacher \(teacher.shape)")
    let (n, k) = (student.shape[0], student.shape[1])
    let t = temperature
    let ps = softmaxRows(student.value, temperature: t)
    let pt = softmaxRows(teacher.value, temperature: t)
    var kl: Double = 0
    ps.withUnsafeBufferPointer { s in
        pt.withUnsafeBufferPointer { q in
            for i in 0..<(n * k) where q[i] > 0 {
                kl += Double(q[i]) * (Double(logf(q[i])) - Double(logf(Swift.max(s[i], .leastNormalMagnitude))))
            }
        }
    }
    let value = Float(kl / Double(n)) * t * t
    return record(Tensor.scalar(value), [student, teacher], saving: [ps, pt]) { gy, needs in
        let scale = gy.item * t / Float(n)
        // d/ds = T (p_s - p_t) / N; d/dt = T (p_t * (log p_t - log p_s) - p_t * KL_row) / N.
        let gs: Tensor? = needs[0] ? (ps - pt) * scale : nil
        var gt: Tensor? = nil
        if needs[1] {
            var d = Tensor(uninitializedShape: [n, k])
            ps.withUnsafeBufferPointer { s in
                pt.withUnsafeBufferPointer { q in
                    d.withUnsafeMutableBufferPointer { o in
                        for r in 0..<n {
                            var row: Float = 0
                            for j in 0..<k {
                                let i = r * k + j
                                row += q[i] * (logf(q[i]) - logf(s[i]))
                            }
                            for j in 0..<k {
                                let i = r * k + j
                                o[i] = scale * q[i] * (logf(q[i]) - logf(s[i]) - row)
                            }
                        }
                    }
                }
            }
            gt = d
        }
        return [gs, gt]
    }
}

/// Mean squared error over all elements: mean((a - b)^2).
public func mse(_ a: Variable, _ b: Variable) -> Variable {
    precondition(a.shape == b.shape, "mse: \(a.shape) vs \(b.shape)")
    let diff = a.value - b.value
    let n = Float(diff.count)
    let value = diff.withUnsafeBufferPointer { d in d.reduce(Double(0)) { $0 + Double($1 * $1) } }
    return record(Tensor.scalar(Float(value) / n), [a, b], saving: [diff]) { gy, needs in
        let g = diff * (2 * gy.item / n)
        return [needs[0] ? g : nil, needs[1] ? g * -1 : nil]
    }
}
