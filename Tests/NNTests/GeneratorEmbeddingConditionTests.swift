import Autodiff
import Checkpoint
import NN
import Testing
import TensorCore
import TestSupport

// The embedding condition (method.md section 5's option): z * E(y) * (1 + MLP(p)). The shared
// golden files do not cover it: a PyTorch reference made by scripts/make-generator-embedding-golden.py
// does, and a zero MLP output ties it to the unconditioned generator.
@Suite struct GeneratorEmbeddingConditionTests {
    func config(_ condition: PositionCondition) -> GeneratorConfig {
        var c = GeneratorConfig()
        (c.latent, c.classes, c.imageSize, c.condition) = (6, 3, 8, condition)
        return c
    }

    func detachedCopy(_ t: Tensor) -> Tensor { Tensor(shape: t.shape, scalars: t.scalars) }

    let labels = [0, 0, 2, 2, 1, 1]
    let z = Tensor.randomNormal([6, 6], seed: 3)
    let p = Tensor(shape: [6, 2], scalars: [0.2, -0.1, 0.2, -0.1, -0.25, 0.05, -0.25, 0.05, 0, 0.15, 0, 0.15])

    /// A copy of `g`'s parameters into `target`, by name (the MLP's only where both have it).
    func copy(_ g: Generator, into target: Generator) {
        let source = Dictionary(uniqueKeysWithValues: g.namedState())
        for (name, parameter) in target.namedState() { if let s = source[name] { parameter.assign(s.value) } }
    }

    @Test func namesFollowPyTorchsSequential() {
        let names = Generator(config(.embedding)).namedParameters().map(\.0)
        #expect(Array(names.suffix(4)) == ["mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"])
        #expect(!Generator(config(.heatMap)).namedParameters().contains { $0.0.hasPrefix("mlp.") })
        #expect(Generator(config(.embedding)).conv1.weight.shape[1] == 128, "no heat-map channel")
    }

    /// With the MLP's output layer at zero the condition multiplies by 1: the generator is the
    /// unconditioned one. With it nonzero, the positions change the images.
    @Test func aZeroMLPOutputIsTheUnconditionedGenerator() throws {
        let conditioned = Generator(config(.embedding), seed: 4)
        let plain = Generator(config(.none), seed: 9)
        copy(conditioned, into: plain)
        let mlp = try #require(conditioned.positionMLP)
        // Copies: `assign` writes through into the parameter's storage, which `value` shares.
        let saved = (detachedCopy(mlp.second.weight.value), detachedCopy(mlp.second.bias!.value))
        mlp.second.weight.assign(Tensor.zeros(saved.0.shape))
        mlp.second.bias!.assign(Tensor.zeros(saved.1.shape))
        let a = withoutGradients { conditioned.generate(z: Variable(z), labels: labels, positions: p) }.value
        let b = withoutGradients { plain.generate(z: Variable(z), labels: labels, positions: nil) }.value
        #expect(a.scalars == b.scalars)

        mlp.second.weight.assign(saved.0)
        mlp.second.bias!.assign(saved.1)
        let moved = Tensor(shape: [6, 2], scalars: p.scalars.map { -$0 })
        let c = withoutGradients { conditioned.generate(z: Variable(z), labels: labels, positions: p) }.value
        let d = withoutGradients { conditioned.generate(z: Variable(z), labels: labels, positions: moved) }.value
        #expect(c.closeness(to: d, rtol: 0, atol: 1e-3) > 1, "the positions must reach the images")
    }

    /// Forward and every parameter gradient against PyTorch
    /// (`scripts/make-generator-embedding-golden.py`: latent 16, 4 classes, 8x8 images).
    @Test func forwardAndParameterGradientsMatchPyTorch() throws {
        let golden = try Golden.load("embedding", folder: "generator")
        var c = GeneratorConfig()
        (c.latent, c.classes, c.imageSize, c.condition) = (16, 4, 8, .embedding)
        let g = Generator(c)
        try StateDict.load(golden, into: g, prefix: "param.", strict: false, buffers: false)
        let labels = try golden.tensor("labels").scalars.map { Int($0) }
        let x = g.generate(z: Variable(try golden.tensor("z")), labels: labels, positions: try golden.tensor("p"))
        expectClose(x.value, try golden.tensor("x"), rtol: 1e-4, atol: 1e-4, "x")
        x.backward(seed: try golden.tensor("grad_x"))
        let checked = try expectParameterGradientsMatch(g, golden: golden)
        #expect(checked == 19)
    }
}
