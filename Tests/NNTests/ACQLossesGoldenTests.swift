import Autodiff
import Checkpoint
import Methods
import NN
import Testing
import TensorCore
import TestSupport

// ../shared/golden/acq_losses: a fixed eval-mode teacher, a batch of 4 same-condition pairs, and
// each generator loss with its gradient with respect to the images.
@Suite struct ACQLossesGoldenTests {
    let rtol: Float = 1e-3

    func setUp() throws -> (ResNet, Tensor, [Int], Tensor, Tensor, SafetensorsFileBox) {
        let g = try Golden.load("acq_losses")
        let teacher = ResNet(ResNetConfig())
        try StateDict.load(g, into: teacher, prefix: "teacher.", strict: false)
        teacher.setRequiresGrad(false)
        return (teacher, try g.tensor("x"), try g.tensor("labels").scalars.map { Int($0) },
                try g.tensor("p"), try g.tensor("z"), SafetensorsFileBox(g))
    }

    func check(_ name: String, _ loss: (ResNet, Variable, [Int], Tensor, Tensor) -> Variable) throws {
        let (teacher, x, labels, p, z, g) = try setUp()
        let xv = Variable(x, requiresGrad: true)
        let value = loss(teacher, xv, labels, p, z)
        expectClose(value.value.reshaped([1]), try g.file.tensor("loss_\(name)"), rtol: rtol, atol: 1e-6, "loss_\(name)")
        value.backward()
        let expected = try g.file.tensor("grad_x_\(name)")
        expectClose(xv.grad!, expected, rtol: rtol, atol: 1e-3 * expected.maxAbs(), "grad_x_\(name)")
    }

    @Test func attentionDistributionAndCentre() throws {
        let (teacher, x, _, _, _, g) = try setUp()
        let attention = Attention(features: teacherPass(teacher, Variable(x)).features)
        expectClose(attention.distribution.value, try g.file.tensor("P_eval"), rtol: 1e-4, atol: 1e-6, "P_eval")
        expectClose(attention.centre.value, try g.file.tensor("centre"), rtol: 1e-4, atol: 1e-5, "centre")
    }

    @Test func crossEntropy() throws {
        try check("ce") { t, x, y, _, _ in Autodiff.crossEntropy(teacherPass(t, x).logits, labels: y) }
    }

    @Test func batchNormStatistics() throws {
        try check("bns") { t, x, _, _, _ in
            batchNormStatisticsLoss(teacherPass(t, x, captureBatchNormInputs: true), teacher: t)
        }
    }

    @Test func attentionCentreMatching() throws {
        try check("acm") { t, x, _, p, _ in attentionCentreLoss(Attention(features: teacherPass(t, x).features), positions: p) }
    }

    @Test func pairedLoss() throws {
        try check("pair") { t, x, _, _, z in Methods.pairedLoss(Attention(features: teacherPass(t, x).features), noise: z) }
    }

    @Test func consistency() throws {
        try check("cons") { t, x, _, _, _ in
            let eval = Attention(features: teacherPass(t, x).features)
            let runningBefore = t.batchNorms[5].runningMean.value.scalars
            let train = Attention(features: teacherPass(t, x, batchStatistics: true).features)
            #expect(t.batchNorms[5].runningMean.value.scalars == runningBefore, "the train-mode pass must not move running statistics")
            return attentionConsistencyLoss(eval: eval, train: train)
        }
    }
}
