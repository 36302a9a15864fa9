import TensorCore
#if canImport(Glibc)
import Glibc
#endif

/// max(x, 0).
public func relu(_ x: Variable) -> Variable {
    let y = x.value.relu()
    return record(y, [x], saving: [y]) { gy, _ in
        // The output's sign is the input's, so y is all backward needs.
        [gy.maskedByPositive(y)]
    }
}

/// relu(a + b): a residual block's addition and ReLU in one pass.
public func addReLU(_ a: Variable, _ b: Variable) -> Variable {
    let y = a.value.addingReLU(b.value)
    return record(y, [a, b], saving: [y]) { gy, needs in
        let g = gy.maskedByPositive(y)
        return [needs[0] ? g : nil, needs[1] ? g : nil]
    }
}

/// x for x > 0, slope * x otherwise.
public func leakyRelu(_ x: Variable, slope: Float = 0.2) -> Variable {
    let xv = x.value
    let y = xv.map { $0 > 0 ? $0 : slope * $0 }
    return record(y, [x], saving: [xv]) { gy, _ in [gy.zipMap(xv) { g, v in v > 0 ? g : slope * g }] }
}

/// tanh(x).
public func tanh(_ x: Variable) -> Variable {
    let y = x.value.map { Glibc.tanhf($0) }
    return record(y, [x], saving: [y]) { gy, _ in [gy.zipMap(y) { g, t in g * (1 - t * t) }] }
}
