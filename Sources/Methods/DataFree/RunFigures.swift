import Autodiff
import Checkpoint
import Foundation
import Imaging
import NN
import TensorCore

/// The pictures a data-free run leaves in its folder: a grid of the trained generator's samples
/// per class, each with the teacher's attention centre (red) and, for a conditioned generator,
/// the position it was asked for (green); and one figure of every loss term and the student's
/// accuracy over the steps.
enum RunFigures {
    static let requestedColor = RGBColor(20, 180, 40)

    /// Writes `samples/class-<k>.png` (one grid per class) and `samples.png` (a row per class).
    /// Samples come from fresh noise (a stream of their own), `perClass` per class, in pairs that
    /// share a position as in training; the generator normalises over all of them at once.
    static func writeSamples(_ trainer: DataFreeTrainer, metadata: ModelMetadata, classNames: [String]?,
                             perClass: Int = 8, folder: RunFolder) throws {
        let generator = trainer.generator, config = trainer.config
        let classes = generator.config.classes, latent = generator.config.latent
        let n = classes * perClass
        var labels: [Int] = [], noise = Tensor(uninitializedShape: [n, latent]), positions = Tensor(uninitializedShape: [n, 2])
        for i in 0..<n {
            labels.append(i / perClass)
            var pair = RandomStream(seed: config.seed, purpose: 0x5348_4F57, step: 0, index: i / 2)  // "SHOW"
            positions[flat: 2 * i] = (2 * pair.uniform() - 1) * config.positionRange
            positions[flat: 2 * i + 1] = (2 * pair.uniform() - 1) * config.positionRange
            var z = RandomStream(seed: config.seed, purpose: 0x5348_4F57, step: 1, index: i)
            for j in 0..<latent { noise[flat: i * latent + j] = z.normal() }
        }
        let conditioned = generator.config.condition.takesPositions
        let reducer = generator.bn0.reducer
        generator.setReducer(nil)
        defer { generator.setReducer(reducer) }
        let (images, centres) = withoutGradients { () -> (Tensor, [Float]) in
            let x = generator.generate(z: Variable(noise), labels: labels, positions: conditioned ? positions : nil)
            let pass = teacherPass(trainer.teacher, x)
            return (x.value, Attention(features: pass.features).centre.value.scalars)
        }
        // Back to pixels in [0, 1]: x * std + mean per channel.
        let shape = images.shape, plane = shape[2] * shape[3]
        var pixels = images.scalars
        for i in 0..<n {
            for c in 0..<shape[1] {
                let (mean, std) = (metadata.mean[c % metadata.mean.count], metadata.std[c % metadata.std.count])
                for p in 0..<plane { pixels[(i * shape[1] + c) * plane + p] = pixels[(i * shape[1] + c) * plane + p] * std + mean }
            }
        }
        let centre = { (i: Int) in (x: centres[2 * i], y: centres[2 * i + 1]) }
        let requested = { (i: Int) in (x: positions[flat: 2 * i], y: positions[flat: 2 * i + 1]) }
        func grid(_ indices: [Int], columns: Int, title: String) -> RGBImage {
            let layout = SampleGrid(shape: [indices.count] + Array(shape.dropFirst()), columns: columns, scale: 4, title: title)
            let values = indices.flatMap { pixels[($0 * shape[1] * plane)..<(($0 + 1) * shape[1] * plane)] }
            var image = layout.render(images: Array(values), centres: indices.map(centre))
            guard conditioned else { return image }
            for (k, i) in indices.enumerated() {
                guard let at = layout.markerPixel(centre: requested(i)) else { continue }
                let origin = layout.origin(ofImage: k)
                image.drawCross(x: origin.x + at.x, y: origin.y + at.y, radius: 3, requestedColor)
            }
            return image
        }
        let method = config.method.rawValue.uppercased()
        let legend = conditioned ? "red: attention centre, green: requested position" : "red: attention centre"
        let samples = folder.file("samples")
        try FileManager.default.createDirectory(at: samples, withIntermediateDirectories: true)
        for k in 0..<classes {
            let name = classNames.map { $0[k] } ?? "class \(k)"
            try grid(Array((k * perClass)..<((k + 1) * perClass)), columns: perClass / 2, title: "\(method) \(name) - \(legend)")
                .write(to: samples.appendingPathComponent("class-\(k).png"))
        }
        try grid(Array(0..<n), columns: perClass, title: "\(method): a row per class - \(legend)")
            .write(to: folder.file("samples.png"))
    }

    /// `plot.png` from the run's metrics.jsonl: a panel per loss term over the steps, and the
    /// student's test accuracy (after calibration, while training when monitored, at the end).
    static func writePlot(metrics: URL, warmupSteps: Int, title: String, to url: URL) throws {
        let text = try String(contentsOf: metrics, encoding: .utf8)
        let records = text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        var panels: [PlotPanel] = []
        for key in ["generator", "ce", "bns", "acm", "pair", "cons", "student"] {
            let points = records.compactMap { r -> (x: Double, y: Double)? in
                guard let step = r["step"] as? Int, let value = r[key] as? Double else { return nil }
                return (Double(step), value)
            }
            guard !points.isEmpty else { continue }
            let name = key == "student" ? "student loss (CE + KD)" : key == "generator" ? "generator loss (weighted sum)" : "\(key) loss"
            panels.append(PlotPanel(title: name, series: [Series(name: name, points: points)], markers: [Double(warmupSteps)]))
        }
        // Measurements during fine-tuning use a slice of the test set; the others all of it.
        func accuracy(monitored: Bool) -> [(x: Double, y: Double)] {
            records.compactMap { r in
                guard let step = r["step"] as? Int, let value = r["student_accuracy"] as? Double,
                      (r["student_accuracy_images"] != nil) == monitored else { return nil }
                return (Double(step), 100 * value)
            }
        }
        let slice = records.compactMap { $0["student_accuracy_images"] as? Int }.first
        var series = [Series(name: "all test images", points: accuracy(monitored: false))]
        if let slice { series.append(Series(name: "first \(slice) test images", points: accuracy(monitored: true))) }
        panels.append(PlotPanel(title: "student test accuracy %", series: series, markers: [Double(warmupSteps)]))
        let rows = (panels.count + 1) / 2
        try LinePlot(panels: panels, columns: 2, title: title).render(width: 1100, height: 60 + 260 * rows).write(to: url)
    }
}
