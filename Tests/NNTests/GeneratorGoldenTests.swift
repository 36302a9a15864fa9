import Autodiff
import Checkpoint
import NN
import Safetensors
import Testing
import TensorCore
import TestSupport

// ../shared/golden/generator: the GDFQ generator with the heat-map channel, forward and every
// parameter gradient for a given output gradient.
@Suite struct GeneratorGoldenTests {
    @Test func forwardAndParameterGradientsMatchPyTorch() throws {
        let g = try Golden.load("generator")
        let generator = Generator(GeneratorConfig())
        try StateDict.load(g, into: generator, prefix: "param.", strict: false, buffers: false)
        let p = try g.tensor("p")
        expectClose(Generator.heatMap(p, size: 7, std: 0.25), try g.tensor("heatmap"), rtol: 1e-5, atol: 1e-6, "heatmap")
        let z = Variable(try g.tensor("z"))
        let labels = try g.tensor("labels").scalars.map { Int($0) }
        let x = generator.generate(z: z, labels: labels, positions: p)
        expectClose(x.value, try g.tensor("x"), rtol: 1e-4, atol: 1e-4, "x")
        x.backward(seed: try g.tensor("grad_x"))
        let checked = try expectParameterGradientsMatch(generator, golden: g)
        #expect(checked == 15)
    }
}

/// Every parameter gradient of `generator` against the golden file's `grad.<name>` tensors;
/// returns how many were checked.
func expectParameterGradientsMatch(_ generator: Generator, golden g: SafetensorsFile) throws -> Int {
    var checked = 0
    for (name, parameter) in generator.namedParameters() {
        let expected = try g.tensor("grad.\(name)")
        let actual = try #require(parameter.grad, "no gradient for \(name)")
        if ["conv1.bias", "conv2.bias"].contains(name) {
            // A conv bias right before a batch norm has a gradient of exactly zero (the BN
            // subtracts every per-channel constant): both sides hold rounding noise, which
            // must stay negligible next to the conv weight's gradient.
            let weightScale = try g.tensor("grad.\(name.replacingOccurrences(of: "bias", with: "weight"))").maxAbs()
            #expect(actual.maxAbs() < 1e-3 * weightScale && expected.maxAbs() < 1e-3 * weightScale,
                    "\(name): \(actual.maxAbs()) and \(expected.maxAbs()) against weight gradients of \(weightScale)")
        } else {
            expectClose(actual, expected, rtol: 1e-3, atol: 1e-4 * Swift.max(expected.maxAbs(), 1e-6), "grad.\(name)")
        }
        checked += 1
    }
    return checked
}
