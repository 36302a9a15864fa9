import Autodiff
import TensorCore

/// A module of a network: a forward function, its own parameters and buffers, and children.
///
/// Layers are classes: they hold state that changes (running statistics, mode). Parameters are
/// declared explicitly, in PyTorch's state-dict order, so that names map one to one to PyTorch.
public protocol Layer: AnyObject {
    func forward(_ x: Variable) -> Variable
    /// This layer's own parameters and buffers (not its children's), with local names.
    var ownState: [(String, Parameter)] { get }
    /// Direct children with their local names.
    var children: [(String, any Layer)] { get }
    /// Called by `setMode` on every layer of a tree.
    func didSetMode(_ mode: Mode)
}

extension Layer {
    public var ownState: [(String, Parameter)] { [] }
    public var children: [(String, any Layer)] { [] }
    public func didSetMode(_ mode: Mode) {}

    public func callAsFunction(_ x: Variable) -> Variable { forward(x) }

    /// Every parameter and buffer of the tree with its dotted PyTorch name, in state-dict order.
    public func namedState(prefix: String = "") -> [(String, Parameter)] {
        var out = ownState.map { (prefix + $0.0, $0.1) }
        for (name, child) in children { out += child.namedState(prefix: prefix + name + ".") }
        return out
    }

    /// Trainable parameters only.
    public func namedParameters() -> [(String, Parameter)] {
        namedState().filter { $0.1.kind == .trainable }
    }

    /// Every layer of the tree, this one first.
    public func allLayers() -> [any Layer] {
        [self] + children.flatMap { $0.1.allLayers() }
    }

    /// Sets the mode of every layer in the tree.
    public func setMode(_ mode: Mode) {
        for layer in allLayers() { layer.didSetMode(mode) }
    }

    /// Stops (or restarts) gradient computation for every parameter: a frozen teacher still
    /// passes gradients to its input.
    public func setRequiresGrad(_ flag: Bool) {
        for (_, p) in namedParameters() { p.requiresGrad = flag }
    }

    public func zeroGradients() {
        for (_, p) in namedParameters() { p.zeroGradient() }
    }

    public var parameterCount: Int { namedParameters().reduce(0) { $0 + $1.1.value.count } }
}
