import Imaging
import Testing

@Suite struct SampleGridTests {
    /// A distinct byte for every (image, channel, row, column), stored as the float that maps back to it.
    func byte(_ k: Int, _ c: Int, _ i: Int, _ j: Int) -> UInt8 {
        UInt8((k * 37 + c * 11 + i * 5 + j) % 256)
    }

    @Test func imagePixelLandsInItsUpscaledBlock() {
        let (n, c, h, w, scale) = (5, 3, 3, 4, 3)
        // images: [N, C, H, W]
        var images: [Float] = []
        for k in 0..<n { for ch in 0..<c { for i in 0..<h { for j in 0..<w {
            images.append(Float(byte(k, ch, i, j)) / 255)
        } } } }
        let grid = SampleGrid(shape: [n, c, h, w], columns: 2, scale: scale)
        let out = grid.render(images: images)

        #expect(out.width == 2 + 2 * (w * scale + 2))
        #expect(out.height == 2 + 3 * (h * scale + 2))
        #expect(grid.origin(ofImage: 0) == (2, 2))
        #expect(grid.origin(ofImage: 3) == (2 + 14, 2 + 11))
        for k in 0..<n {
            let origin = grid.origin(ofImage: k)
            for i in 0..<h { for j in 0..<w {
                let expected = RGBColor(byte(k, 0, i, j), byte(k, 1, i, j), byte(k, 2, i, j))
                for dy in 0..<scale { for dx in 0..<scale {
                    let x = origin.x + j * scale + dx, y = origin.y + i * scale + dy
                    #expect(out.pixel(x: x, y: y) == expected, "image \(k) pixel (\(i), \(j)) at (\(x), \(y))")
                } }
            } }
        }
        // The gaps and the empty sixth cell show the background.
        #expect(out.pixel(x: 14, y: 5) == .lightGrey)
        #expect(out.pixel(x: 15, y: 5) == .lightGrey)
        #expect(out.pixel(x: 20, y: 28) == .lightGrey)
    }

    @Test func greyImagesAreClampedAndNaNIsBlack() {
        let images: [Float] = [-0.5, 0, 0.5, 1, 2, .nan]
        let out = SampleGrid.render(images: images, shape: [1, 1, 2, 3], columns: 4)
        let row0 = (0..<3).map { out.pixel(x: 2 + $0, y: 2) }
        let row1 = (0..<3).map { out.pixel(x: 2 + $0, y: 3) }
        #expect(row0 == [RGBColor(grey: 0), RGBColor(grey: 0), RGBColor(grey: 128)])
        #expect(row1 == [RGBColor(grey: 255), RGBColor(grey: 255), RGBColor(grey: 0)])
        #expect(out.width == 2 + 3 + 2)
    }

    @Test func centreMarkersFollowTheNormalisedConvention() {
        let (n, h, w, scale) = (4, 28, 28, 4)
        let grid = SampleGrid(shape: [n, 1, h, w], columns: 2, scale: scale)
        let centres: [(x: Float, y: Float)] = [(0, 0), (-1, -1), (1, 1), (.nan, 0)]
        let out = grid.render(images: [Float](repeating: 0, count: n * h * w), centres: centres)

        let tile = h * scale
        #expect(grid.markerPixel(centre: (0, 0))! == (tile / 2, tile / 2))
        #expect(grid.markerPixel(centre: (-1, -1))! == (0, 0))
        #expect(grid.markerPixel(centre: (1, 1))! == (tile - 1, tile - 1))
        #expect(grid.markerPixel(centre: (-0.5, 0.5))! == (tile / 4, 3 * tile / 4))
        #expect(grid.markerPixel(centre: (3, -7))! == (tile - 1, 0))

        let centre = grid.origin(ofImage: 0)
        #expect(out.pixel(x: centre.x + tile / 2, y: centre.y + tile / 2) == .red)
        let topLeft = grid.origin(ofImage: 1)
        #expect(out.pixel(x: topLeft.x, y: topLeft.y) == .red)
        let bottomRight = grid.origin(ofImage: 2)
        #expect(out.pixel(x: bottomRight.x + tile - 1, y: bottomRight.y + tile - 1) == .red)

        // Markers stay inside their own tile, and a non-finite centre draws nothing.
        for k in 0..<n {
            let origin = grid.origin(ofImage: k)
            var red = 0
            for y in origin.y..<origin.y + tile { for x in origin.x..<origin.x + tile where out.pixel(x: x, y: y) == .red {
                red += 1
            } }
            #expect(k == 3 ? red == 0 : red > 0, "image \(k) has \(red) marker pixels")
        }
        #expect(pixels(of: .red, in: out).allSatisfy { p in
            (0..<n).contains { k in
                let o = grid.origin(ofImage: k)
                return p.x >= o.x && p.x < o.x + tile && p.y >= o.y && p.y < o.y + tile
            }
        })
    }

    @Test func titleSitsAboveTheImagesAndWidensANarrowGrid() {
        let untitled = SampleGrid(shape: [2, 1, 4, 4], columns: 2)
        let title = "ACQ step 400: acc=91.5%"
        let titled = SampleGrid(shape: [2, 1, 4, 4], columns: 2, title: title)
        #expect(titled.origin(ofImage: 0).y == untitled.origin(ofImage: 0).y + BitmapFont.height() + 4)
        #expect(titled.outputWidth == BitmapFont.width(of: title) + 4)

        let out = titled.render(images: [Float](repeating: 1, count: 32))
        let band = pixels(of: .black, in: out).filter { $0.y < titled.origin(ofImage: 0).y }
        #expect(!band.isEmpty)
        #expect(band.map(\.x).min() == SampleGrid.gap)
        #expect(band.map(\.x).max() == SampleGrid.gap + BitmapFont.width(of: title) - 1)
        #expect(out.pixel(x: titled.origin(ofImage: 1).x, y: titled.origin(ofImage: 1).y) == RGBColor(grey: 255))
    }
}
