import Autodiff
import Data
import NN
import TensorCore

/// Accuracy and mean cross-entropy of `model` (eval mode) on a labelled dataset.
public func evaluate(_ model: any Layer, on data: Dataset, batchSize: Int = 500,
                     progress: Progress? = nil) -> (accuracy: Double, loss: Double) {
    model.setMode(.eval)
    return evaluate(on: data, batchSize: batchSize, progress: progress) { images in
        withoutGradients { model(Variable(images)) }.value
    }
}

/// Accuracy and mean cross-entropy of the classifier `logits` ([N, C, H, W] -> [N, classes]) on
/// a labelled dataset: what any model, float or integer, is measured with.
public func evaluate(on data: Dataset, batchSize: Int = 500, progress: Progress? = nil,
                     logits classify: (Tensor) -> Tensor) -> (accuracy: Double, loss: Double) {
    var correct = 0
    var lossSum: Double = 0
    var start = 0
    while start < data.count {
        let end = Swift.min(start + batchSize, data.count)
        let (images, labels) = data.batch(indices: Array(start..<end))
        let logits = classify(images)
        correct += zip(argmaxRows(logits), labels).filter { $0 == $1 }.count
        lossSum += Double(withoutGradients { crossEntropy(Variable(logits), labels: labels) }.value.item) * Double(end - start)
        start = end
        progress?.update(start)
    }
    progress?.finish()
    return (Double(correct) / Double(data.count), lossSum / Double(data.count))
}

/// Index of the largest value of each row. - logits: [N, K].
public func argmaxRows(_ logits: Tensor) -> [Int] {
    let (n, k) = (logits.shape[0], logits.shape[1])
    let v = logits.scalars
    return (0..<n).map { r in
        var best = 0
        for j in 1..<k where v[r * k + j] > v[r * k + best] { best = j }
        return best
    }
}
