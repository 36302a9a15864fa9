import Imaging
import Testing

/// Coordinates of every pixel of `color`, row by row.
func pixels(of color: RGBColor, in image: RGBImage) -> [(x: Int, y: Int)] {
    var found: [(x: Int, y: Int)] = []
    for y in 0..<image.height {
        for x in 0..<image.width where image.pixel(x: x, y: y) == color {
            found.append((x, y))
        }
    }
    return found
}

@Suite struct DrawingTests {
    let ink = RGBColor(10, 200, 30)

    @Test func setAndGetPixelUseRowMajorRGBLayout() {
        var image = RGBImage(width: 4, height: 3, fill: .black)
        image.setPixel(x: 2, y: 1, RGBColor(7, 8, 9))
        image.setPixel(x: -1, y: 0, ink)
        image.setPixel(x: 4, y: 2, ink)
        #expect(image.pixel(x: 2, y: 1) == RGBColor(7, 8, 9))
        #expect(Array(image.pixels[(1 * 4 + 2) * 3..<(1 * 4 + 2) * 3 + 3]) == [7, 8, 9])
        #expect(image.pixels.filter { $0 != 0 }.count == 3)
    }

    @Test func fillRectIsClipped() {
        var image = RGBImage(width: 6, height: 5, fill: .white)
        image.fillRect(x: -2, y: 3, width: 4, height: 10, ink)
        let filled = pixels(of: ink, in: image)
        #expect(filled.map(\.x) == [0, 1, 0, 1])
        #expect(filled.map(\.y) == [3, 3, 4, 4])
    }

    @Test func bresenhamLineHasOnePixelPerColumnAndBothEnds() {
        var image = RGBImage(width: 10, height: 10, fill: .white)
        image.drawLine(x0: 1, y0: 1, x1: 8, y1: 4, ink)
        let line = pixels(of: ink, in: image)
        #expect(line.count == 8)
        #expect(Set(line.map(\.x)) == Set(1...8))
        #expect(line.contains { $0 == (1, 1) })
        #expect(line.contains { $0 == (8, 4) })
        let ordered = line.sorted { $0.x < $1.x }
        for (a, b) in zip(ordered, ordered.dropFirst()) {
            #expect(b.y - a.y == 0 || b.y - a.y == 1)
        }
    }

    @Test func lineFarOutsideIsClippedToTheImage() {
        var image = RGBImage(width: 10, height: 10, fill: .white)
        image.drawLine(x0: -1_000_000, y0: 5, x1: Int.max / 2, y1: 5, ink)
        image.drawLine(x0: -50, y0: -50, x1: -10, y1: 100, ink)
        let line = pixels(of: ink, in: image)
        #expect(line.count == 10)
        #expect(line.allSatisfy { $0.y == 5 })
    }

    @Test func crossAndRingAreCentredOnTheirPoint() {
        var image = RGBImage(width: 21, height: 21, fill: .white)
        image.drawCross(x: 10, y: 10, radius: 3, ink)
        #expect(pixels(of: ink, in: image).count == 13)
        #expect(image.pixel(x: 7, y: 10) == ink && image.pixel(x: 13, y: 10) == ink)
        #expect(image.pixel(x: 10, y: 7) == ink && image.pixel(x: 10, y: 13) == ink)

        var ring = RGBImage(width: 21, height: 21, fill: .white)
        ring.drawRing(x: 10, y: 10, radius: 6, ink)
        let points = pixels(of: ink, in: ring)
        #expect(ring.pixel(x: 16, y: 10) == ink && ring.pixel(x: 4, y: 10) == ink)
        #expect(ring.pixel(x: 10, y: 10) == .white)
        for p in points {
            let distance = Double((p.x - 10) * (p.x - 10) + (p.y - 10) * (p.y - 10)).squareRoot()
            #expect(abs(distance - 6) < 1)
        }
    }

    @Test func blitCopiesAndClips() {
        var source = RGBImage(width: 3, height: 2, fill: .black)
        source.setPixel(x: 0, y: 0, ink)
        source.setPixel(x: 2, y: 1, RGBColor(1, 2, 3))
        var target = RGBImage(width: 4, height: 4, fill: .white)
        target.blit(source, x: 2, y: -1)
        // Only source columns 0...1 of row 1 land inside (at target x 2...3, y 0).
        #expect(target.pixel(x: 2, y: 0) == .black)
        #expect(target.pixel(x: 3, y: 0) == .black)
        #expect(pixels(of: .black, in: target).count == 2)

        target.blit(source, x: 1, y: 1)
        #expect(target.pixel(x: 1, y: 1) == ink)
        #expect(target.pixel(x: 3, y: 2) == RGBColor(1, 2, 3))
        #expect(target.pixel(x: 0, y: 1) == .white)
    }
}

@Suite struct FontTests {
    @Test func glyphIsDrawnBitForBitAtScale() {
        var image = RGBImage(width: 20, height: 20, fill: .white)
        image.drawText("7", x: 3, y: 2, color: .black, scale: 2)
        let rows = BitmapFont.glyph("7")
        #expect(rows == [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08])
        for y in 0..<20 {
            for x in 0..<20 {
                let column = (x - 3) / 2, row = (y - 2) / 2
                let inGlyph = x >= 3 && y >= 2 && column < 5 && row < 7
                    && rows[row] & (0x10 >> UInt8(column)) != 0
                #expect((image.pixel(x: x, y: y) == .black) == inGlyph, "pixel (\(x), \(y))")
            }
        }
    }

    @Test func everyRequiredCharacterHasItsOwnGlyph() {
        let required = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,-+%=:()/_ "
        let fallback = BitmapFont.glyph("?")
        var seen: [[UInt8]: Character] = [:]
        for character in required {
            let glyph = BitmapFont.glyph(character)
            #expect(glyph.count == BitmapFont.capHeight || glyph.count == BitmapFont.glyphHeight)
            #expect(glyph.allSatisfy { $0 < 0x20 }, "\(character) wider than 5 columns")
            #expect(glyph != fallback, "\(character) has no glyph")
            #expect(seen[glyph] == nil, "\(character) looks like \(seen[glyph].map(String.init) ?? "")")
            seen[glyph] = character
        }
        #expect(BitmapFont.glyph("#") == fallback)
    }

    @Test func textWidthMatchesDrawnExtent() {
        var image = RGBImage(width: 60, height: 10, fill: .white)
        image.drawText("H-H", x: 0, y: 0, color: .black)
        let xs = pixels(of: .black, in: image).map(\.x)
        #expect(BitmapFont.width(of: "H-H") == 17)
        #expect(xs.min() == 0)
        #expect(xs.max() == 16)
    }
}
