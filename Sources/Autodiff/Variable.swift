import TensorCore

/// A tensor in the computation graph: its value, its gradient once `backward` has run, and the
/// op that produced it.
///
/// Leaves are inputs and parameters; a leaf with `requiresGrad` collects a gradient. Every op
/// output whose inputs need gradients records a node: its inputs and a closure that maps the
/// output gradient to input gradients. The closure sits in the same file as the op's forward.
public final class Variable {
    public var value: Tensor
    public var grad: Tensor?
    public let requiresGrad: Bool
    let node: Node?

    /// A leaf.
    public init(_ value: Tensor, requiresGrad: Bool = false) {
        self.value = value
        self.requiresGrad = requiresGrad
        node = nil
    }

    init(_ value: Tensor, node: Node) {
        self.value = value
        requiresGrad = true
        self.node = node
    }

    public var shape: [Int] { value.shape }
    public var isLeaf: Bool { node == nil }

    /// The same value, cut from the graph.
    public func detached() -> Variable { Variable(value) }
}

/// One recorded op: maps the gradient of its output to the gradients of its inputs
/// (`needs[i]` tells whether input i wants one; entries for the others may be nil).
final class Node {
    let inputs: [Variable]
    /// The tensors `backward` keeps alive (for memory accounting; it captures them itself).
    let saved: [Tensor]
    let backward: (Tensor, [Bool]) -> [Tensor?]

    init(inputs: [Variable], saved: [Tensor], backward: @escaping (Tensor, [Bool]) -> [Tensor?]) {
        self.inputs = inputs
        self.saved = saved
        self.backward = backward
    }
}

/// Whether ops record the graph. Off inside `withoutGradients`, for evaluation; task-local, so
/// concurrent work (tests, evaluation beside training) does not see another's setting.
public enum GradientMode {
    @TaskLocal public static var isEnabled = true
}

/// Runs `body` without recording any graph (evaluation, statistics, inference).
public func withoutGradients<R>(_ body: () throws -> R) rethrows -> R {
    try GradientMode.$isEnabled.withValue(false) { try body() }
}

/// Records an op: `value` computed from `inputs`; `saving` lists what `backward` keeps alive
/// (for `tapeBytes`); `backward` as in `Node`.
/// Returns a plain leaf when no input needs a gradient, so frozen parts cost nothing.
func record(_ value: Tensor, _ inputs: [Variable], saving: [Tensor] = [],
            backward: @escaping (Tensor, [Bool]) -> [Tensor?]) -> Variable {
    guard GradientMode.isEnabled, inputs.contains(where: \.requiresGrad) else { return Variable(value) }
    return Variable(value, node: Node(inputs: inputs, saved: saving, backward: backward))
}

extension Variable {
    /// Bytes of the tensors that the graph behind this variable keeps for backward, each
    /// storage counted once (a tensor kept by two ops, or two views of one buffer, count once).
    public func tapeBytes() -> Int {
        var seenNodes = Set<ObjectIdentifier>(), seenStorage = Set<ObjectIdentifier>()
        var total = 0
        var stack = [self]
        while let v = stack.popLast() {
            guard let node = v.node, seenNodes.insert(ObjectIdentifier(node)).inserted else { continue }
            for t in node.saved where seenStorage.insert(t.storageIdentity).inserted { total += t.storageBytes }
            stack += node.inputs
        }
        return total
    }
}

extension Variable {
    /// Reverse-mode sweep from this variable: leaves with `requiresGrad` add their gradient to
    /// `grad` (gradients accumulate across calls until reset).
    /// - seed: dL/d(self); defaults to ones (for a scalar loss, 1).
    /// - onLeafGradient: called once for each leaf that received a gradient, as soon as that
    ///   gradient is final for this sweep, so that a data-parallel runtime can start reducing it
    ///   while the rest of backward still runs. An error it throws ends the sweep.
    public func backward(seed: Tensor? = nil) {
        backward(seed: seed, onLeafGradient: { _ in })
    }

    public func backward(seed: Tensor? = nil, onLeafGradient: (Variable) throws -> Void) rethrows {
        precondition(requiresGrad, "backward from a variable that does not depend on any parameter")
        let seed = seed ?? Tensor.ones(value.shape)
        precondition(seed.shape == value.shape, "backward seed \(seed.shape) for value \(value.shape)")
        // Topological order by iterative depth-first search (the graph can be deep).
        var order: [Variable] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Variable, Bool)] = [(self, false)]
        while let (v, expanded) = stack.popLast() {
            if expanded { order.append(v); continue }
            if !visited.insert(ObjectIdentifier(v)).inserted { continue }
            stack.append((v, true))
            for input in v.node?.inputs ?? [] where input.requiresGrad && !visited.contains(ObjectIdentifier(input)) {
                stack.append((input, false))
            }
        }
        var pending: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): seed]
        for v in order.reversed() {
            guard let g = pending.removeValue(forKey: ObjectIdentifier(v)) else { continue }
            guard let node = v.node else {
                if v.grad == nil { v.grad = g } else { v.grad!.add(g) }
                // Reverse topological order: every op that used this leaf has already sent its
                // contribution, so nothing more will be added to it in this sweep.
                try onLeafGradient(v)
                continue
            }
            let needs = node.inputs.map(\.requiresGrad)
            let grads = node.backward(g, needs)
            for (input, grad) in zip(node.inputs, grads) where input.requiresGrad {
                guard let grad else { continue }
                precondition(grad.shape == input.value.shape,
                             "gradient shape \(grad.shape) for input \(input.value.shape)")
                let id = ObjectIdentifier(input)
                if pending[id] == nil { pending[id] = grad } else { pending[id]!.add(grad) }
            }
        }
    }
}
