import Foundation
import NN
import Quantization
import TensorCore

/// Time of one ACQ iteration (generator step + student step) at W4A4 on a ResNet-20 teacher:
/// `repeats` timings of `iterations` iterations each after `warmup`, as seconds per iteration.
public func benchmarkACQIteration(teacher: ResNet, batch: Int, warmup: Int = 2, iterations: Int = 3,
                                  repeats: Int = 5) throws -> (total: [Double], generator: [Double], student: [Double]) {
    var config = DataFreeConfig()
    config.batchSize = batch
    config.calibrationSteps = 1
    let student = try quantize(teacher, config: QuantizationConfig(weightBits: 4, activationBits: 4),
                               inputRange: normalisedPixelRange(mean: [0.286], std: [0.353]))
    let trainer = try DataFreeTrainer(config: config, teacher: teacher, student: student)
    trainer.calibrateStudent(from: 0)
    var step = 0
    func iteration() throws -> (Double, Double) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let (images, labels, _) = try trainer.generatorStep(step, learningRate: 1e-3)
        let t1 = DispatchTime.now().uptimeNanoseconds
        _ = try trainer.studentStep(images: images, labels: labels, learningRate: 1e-3)
        let t2 = DispatchTime.now().uptimeNanoseconds
        step += 1
        return (Double(t1 - t0) / 1e9, Double(t2 - t1) / 1e9)
    }
    for _ in 0..<warmup { _ = try iteration() }
    var total: [Double] = [], generator: [Double] = [], students: [Double] = []
    for _ in 0..<repeats {
        var g = 0.0, s = 0.0
        for _ in 0..<iterations { let (a, b) = try iteration(); g += a; s += b }
        generator.append(g / Double(iterations)); students.append(s / Double(iterations))
        total.append((g + s) / Double(iterations))
    }
    return (total, generator, students)
}
