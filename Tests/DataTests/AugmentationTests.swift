import Data
import TensorCore
import Testing

@Suite struct AugmentationTests {
    /// 3 images of [2, 5, 7] with distinct non-zero pixels, identity normalisation scale 1/255.
    let data: Dataset = {
        let pixels = (0..<(3 * 70)).map { UInt8(1 + $0) }
        return Dataset(name: "toy", pixels: pixels, labels: [0, 1, 2], channels: 2, height: 5, width: 7,
                       classes: 3, mean: [0, 0.5], std: [1, 0.25])
    }()

    /// torchvision's pipeline spelled out: pad with raw zeros, crop, flip, then normalise.
    func reference(index: Int, _ s: Augmentation.Sample, padding: Int) -> [Float] {
        let (h, w) = (data.height, data.width)
        var out: [Float] = []
        for c in 0..<data.channels {
            var padded = [[UInt8]](repeating: [UInt8](repeating: 0, count: w + 2 * padding), count: h + 2 * padding)
            for y in 0..<h { for x in 0..<w { padded[y + padding][x + padding] = data.pixels[index * 70 + c * 35 + y * w + x] } }
            let cropped = (0..<h).map { y in (0..<w).map { x in padded[y + s.dy + padding][x + s.dx + padding] } }
            let flipped = s.flip ? cropped.map { Array($0.reversed()) } : cropped
            out += flipped.joined().map { normalised($0, mean: data.mean[c], std: data.std[c]) }
        }
        return out
    }

    @Test func matchesPadCropFlipReference() {
        let aug = Augmentation.standard
        var seen = Set<[Int]>()
        for step in 0..<40 {
            let images = data.batch(indices: [0, 2], augment: aug, seed: 11, step: step).images
            for (row, index) in [0, 2].enumerated() {
                let s = aug.sample(seed: 11, step: step, index: index)
                seen.insert([s.flip ? 1 : 0, s.dy, s.dx])
                #expect(images.rows(row..<(row + 1)).scalars == reference(index: index, s, padding: 2))
            }
        }
        #expect(seen.count > 20, "40 steps x 2 images should reach many of the 50 choices")
    }

    @Test func flipOfAKnownImageIsItsMirror() throws {
        let aug = Augmentation(horizontalFlip: true, padding: 0)
        let step = try #require((0..<100).first { aug.sample(seed: 5, step: $0, index: 1).flip })
        let plain = data.batch(indices: [1], augment: nil, seed: 5, step: step).images.scalars
        let flipped = data.batch(indices: [1], augment: aug, seed: 5, step: step).images.scalars
        for row in 0..<10 {
            #expect(Array(flipped[(row * 7)..<(row * 7 + 7)]) == plain[(row * 7)..<(row * 7 + 7)].reversed())
        }
    }

    @Test func deterministicPerSampleAndIndependentOfBatchLayout() {
        let aug = Augmentation.standard
        #expect(aug.sample(seed: 3, step: 7, index: 2) == aug.sample(seed: 3, step: 7, index: 2))
        let together = data.batch(indices: [0, 1, 2], augment: aug, seed: 3, step: 7).images
        let again = data.batch(indices: [0, 1, 2], augment: aug, seed: 3, step: 7).images
        #expect(together.scalars == again.scalars)
        // A rank holding only sample 2 must produce what the full batch has in row 2.
        let alone = data.batch(indices: [2], augment: aug, seed: 3, step: 7).images
        #expect(alone.scalars == together.rows(2..<3).scalars)

        let draws = (0..<20).map { aug.sample(seed: 3, step: $0, index: 2) }
        #expect(Set(draws.map { [$0.flip ? 1 : 0, $0.dy, $0.dx] }).count > 5)
        let otherSeed = (0..<20).map { aug.sample(seed: 4, step: $0, index: 2) }
        #expect(draws != otherSeed)
    }

    @Test func drawsAreRoughlyUniform() {
        let aug = Augmentation.standard
        var flips = 0
        var offsets = [Int](repeating: 0, count: 5)
        for i in 0..<5000 {
            let s = aug.sample(seed: 1, step: 0, index: i)
            if s.flip { flips += 1 }
            offsets[s.dx + 2] += 1
        }
        #expect(abs(flips - 2500) < 200)
        #expect(offsets.allSatisfy { abs($0 - 1000) < 150 }, "\(offsets)")
    }

    @Test func disablingFlipKeepsTheCrop() {
        let crops = Augmentation(horizontalFlip: false, padding: 2).sample(seed: 9, step: 4, index: 1)
        let both = Augmentation.standard.sample(seed: 9, step: 4, index: 1)
        #expect(!crops.flip && crops.dy == both.dy && crops.dx == both.dx)
    }
}
