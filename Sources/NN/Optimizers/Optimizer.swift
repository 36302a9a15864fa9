import TensorCore

/// Updates a parameter arena from its gradient buffer.
public protocol Optimizer: AnyObject {
    var arena: ParameterArena { get }
    /// One update with the gradients currently in `arena.gradients`.
    func step(learningRate: Float)
    /// Optimizer state tensors by name (momentum buffers, moments, step count), for checkpoints.
    var state: [(String, Tensor)] { get }
    func loadState(_ state: [String: Tensor]) throws
}

public struct OptimizerStateError: Error, CustomStringConvertible {
    public let description: String
}

/// SGD as PyTorch's: g += wd * p; buf = momentum * buf + g (buf = g at the first step);
/// g = g + momentum * buf (Nesterov) or buf; p -= lr * g.
public final class SGD: Optimizer {
    public let arena: ParameterArena
    public let momentum: Float
    public let nesterov: Bool
    public let weightDecay: Float
    var buffer: Tensor
    var started = false

    public init(_ arena: ParameterArena, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        precondition(!nesterov || momentum > 0, "Nesterov momentum needs momentum > 0")
        self.arena = arena
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        buffer = Tensor.zeros([arena.count])
    }

    public func step(learningRate lr: Float) {
        let (mu, wd, first, nesterov) = (momentum, weightDecay, !started, nesterov)
        arena.values.withSharedMutableBufferPointer { p in
            arena.gradients.withUnsafeBufferPointer { gr in
                buffer.withUnsafeMutableBufferPointer { b in
                    for i in 0..<p.count {
                        var g = gr[i] + wd * p[i]
                        if mu != 0 {
                            b[i] = first ? g : mu * b[i] + g
                            g = nesterov ? g + mu * b[i] : b[i]
                        }
                        p[i] -= lr * g
                    }
                }
            }
        }
        started = true
    }

    public var state: [(String, Tensor)] {
        [("momentum_buffer", buffer), ("started", Tensor.scalar(started ? 1 : 0))]
    }

    public func loadState(_ state: [String: Tensor]) throws {
        guard let b = state["momentum_buffer"], b.shape == buffer.shape, let s = state["started"] else {
            throw OptimizerStateError(description: "SGD state needs momentum_buffer of shape \(buffer.shape) and started")
        }
        buffer = b
        started = s.item != 0
    }
}

/// Adam (Kingma & Ba) as PyTorch's, with L2 weight decay added to the gradient.
public final class Adam: Optimizer {
    public let arena: ParameterArena
    public let beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    var m: Tensor, v: Tensor
    var t = 0

    public init(_ arena: ParameterArena, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8,
                weightDecay: Float = 0) {
        self.arena = arena
        (self.beta1, self.beta2, self.eps, self.weightDecay) = (beta1, beta2, eps, weightDecay)
        m = Tensor.zeros([arena.count])
        v = Tensor.zeros([arena.count])
    }

    public func step(learningRate lr: Float) {
        t += 1
        let (b1, b2, eps, wd) = (beta1, beta2, eps, weightDecay)
        let c1 = 1 - Float(Double(b1).power(t)), c2 = 1 - Float(Double(b2).power(t))
        let stepSize = lr / c1
        let c2Root = c2.squareRoot()
        arena.values.withSharedMutableBufferPointer { p in
            arena.gradients.withUnsafeBufferPointer { gr in
                m.withUnsafeMutableBufferPointer { mm in
                    v.withUnsafeMutableBufferPointer { vv in
                        for i in 0..<p.count {
                            let g = gr[i] + wd * p[i]
                            mm[i] = b1 * mm[i] + (1 - b1) * g
                            vv[i] = b2 * vv[i] + (1 - b2) * g * g
                            p[i] -= stepSize * mm[i] / (vv[i].squareRoot() / c2Root + eps)
                        }
                    }
                }
            }
        }
    }

    public var state: [(String, Tensor)] {
        [("exp_avg", m), ("exp_avg_sq", v), ("step", Tensor.scalar(Float(t)))]
    }

    public func loadState(_ state: [String: Tensor]) throws {
        guard let a = state["exp_avg"], let b = state["exp_avg_sq"], let s = state["step"],
              a.shape == m.shape, b.shape == v.shape else {
            throw OptimizerStateError(description: "Adam state needs exp_avg, exp_avg_sq of shape \(m.shape) and step")
        }
        (m, v, t) = (a, b, Int(s.item))
    }
}

extension Double {
    func power(_ n: Int) -> Double { (0..<n).reduce(1) { r, _ in r * self } }
}
