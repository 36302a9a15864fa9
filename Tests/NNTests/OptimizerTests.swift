import Autodiff
import NN
import Safetensors
import TensorCore
import Testing
import TestSupport

// SGD, Adam and the learning-rate schedules against PyTorch's (Fixtures/optim/optimizers.safetensors,
// written by scripts/make-optimizer-golden.py): two parameters a [4,3] and b [5], five recorded
// gradients, the parameters after each of five steps; the learning rates of 50 schedule steps.
@Suite struct OptimizerTests {
    let fixture: SafetensorsFile

    init() throws { fixture = try Golden.load("optimizers", folder: "optim") }

    /// Row `k` of a tensor stacked along its first dimension.
    func row(_ t: Tensor, _ k: Int) -> Tensor {
        let n = t.count / t.shape[0]
        return Tensor(shape: Array(t.shape.dropFirst()), scalars: Array(t.scalars[(k * n)..<((k + 1) * n)]))
    }

    /// Parameters at their initial values, in an arena as a model's would be.
    func makeArena() throws -> (ParameterArena, Parameter, Parameter) {
        let a = Parameter(try fixture.tensor("init.a", shape: [4, 3]))
        let b = Parameter(try fixture.tensor("init.b", shape: [5]))
        return (ParameterArena([("a", a), ("b", b)]), a, b)
    }

    /// Steps `range` of the recorded trajectory: each sets both gradients, gathers them into the
    /// arena and steps; after each, compares the parameters with PyTorch's.
    func run(_ name: String, _ optimizer: any Optimizer, _ a: Parameter, _ b: Parameter, lr: Float,
             steps range: Range<Int>, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (gradsA, gradsB) = (try fixture.tensor("grads.a", shape: [5, 4, 3]), try fixture.tensor("grads.b", shape: [5, 5]))
        let (wantA, wantB) = (try fixture.tensor("\(name).a", shape: [5, 4, 3]), try fixture.tensor("\(name).b", shape: [5, 5]))
        for k in range {
            a.variable.grad = row(gradsA, k)
            b.variable.grad = row(gradsB, k)
            optimizer.arena.gatherGradients()
            optimizer.step(learningRate: lr)
            expectClose(a.value, row(wantA, k), rtol: 1e-5, atol: 1e-6, "\(name) a after step \(k + 1)",
                        sourceLocation: sourceLocation)
            expectClose(b.value, row(wantB, k), rtol: 1e-5, atol: 1e-6, "\(name) b after step \(k + 1)",
                        sourceLocation: sourceLocation)
        }
    }

    /// The optimizers of the fixture, as the script's OPTIMIZERS, with their learning rate.
    static func make(_ name: String, _ arena: ParameterArena) -> (any Optimizer, Float) {
        switch name {
        case "sgd_nesterov": return (SGD(arena, momentum: 0.9, nesterov: true, weightDecay: 1e-4), 0.1)
        case "sgd_momentum": return (SGD(arena, momentum: 0.9, weightDecay: 5e-4), 0.05)
        case "sgd_plain": return (SGD(arena), 0.1)
        case "adam_betas": return (Adam(arena, beta1: 0.5, beta2: 0.999), 1e-3)
        case "adam_wd": return (Adam(arena, weightDecay: 1e-4), 1e-2)
        default: fatalError("no optimizer \(name)")
        }
    }

    static let optimizers = ["sgd_nesterov", "sgd_momentum", "sgd_plain", "adam_betas", "adam_wd"]

    @Test(arguments: optimizers)
    func fiveStepsMatchPyTorch(_ name: String) throws {
        let (arena, a, b) = try makeArena()
        let (optimizer, lr) = Self.make(name, arena)
        try run(name, optimizer, a, b, lr: lr, steps: 0..<5)
    }

    /// A checkpoint of the optimizer state after two steps continues PyTorch's trajectory.
    @Test(arguments: optimizers)
    func stateRestoresMidTrajectory(_ name: String) throws {
        let (arena, a, b) = try makeArena()
        let (first, lr) = Self.make(name, arena)
        try run(name, first, a, b, lr: lr, steps: 0..<2)
        let saved = Dictionary(uniqueKeysWithValues: first.state.map { ($0.0, Tensor(shape: $0.1.shape, scalars: $0.1.scalars)) })
        let (second, _) = Self.make(name, arena)
        try second.loadState(saved)
        try run(name, second, a, b, lr: lr, steps: 2..<5)
    }

    /// The learning rate at each 0-based step against `opt.param_groups[0]['lr']` before step k.
    func expectSchedule(_ schedule: any LearningRateSchedule, _ name: String,
                        sourceLocation: SourceLocation = #_sourceLocation) throws {
        let want = try fixture.tensor("lr.\(name)", shape: [50])
        let got = Tensor(shape: [50], scalars: (0..<50).map { schedule.learningRate(atStep: $0) })
        expectClose(got, want, rtol: 1e-6, atol: 0, "lr.\(name)", sourceLocation: sourceLocation)
    }

    @Test func oneCycleMatchesPyTorch() throws {
        // OneCycleLR(max_lr=0.1, total_steps=50): pct_start 0.3, div 25, final_div 1e4, cos.
        try expectSchedule(OneCycleSchedule(maximum: 0.1, totalSteps: 50), "onecycle")
    }

    @Test func multiStepMatchesPyTorch() throws {
        try expectSchedule(MultiStepSchedule(base: 0.1, milestones: [10, 20, 30], gamma: 0.1), "multistep")
    }

    @Test func cosineMatchesPyTorch() throws {
        // CosineAnnealingLR(T_max=40, eta_min=0.001) over 50 steps: past T_max PyTorch's cosine
        // keeps going (back up towards the base rate at 2 T_max).
        try expectSchedule(CosineSchedule(base: 0.1, totalSteps: 40, minimum: 0.001), "cosine")
    }
}
