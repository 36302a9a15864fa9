/// An 8-bit colour; the only colour model the module draws in.
public struct RGBColor: Equatable, Hashable, Sendable {
    public var r: UInt8
    public var g: UInt8
    public var b: UInt8

    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) {
        self.r = r
        self.g = g
        self.b = b
    }

    /// A grey level.
    public init(grey: UInt8) {
        self.init(grey, grey, grey)
    }

    public static let black = RGBColor(0, 0, 0)
    public static let white = RGBColor(255, 255, 255)
    public static let red = RGBColor(230, 20, 20)
    public static let grey = RGBColor(grey: 128)
    public static let lightGrey = RGBColor(grey: 200)
}

/// An 8-bit RGB raster. Every drawing call is clipped to the image, so callers can draw shapes
/// that stick out of it (a marker near an edge, a line leaving a panel) without checking first.
public struct RGBImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    // pixels: [height, width, 3], row-major, RGB
    public var pixels: [UInt8]

    public init(width: Int, height: Int, fill: RGBColor = .white) {
        precondition(width > 0 && height > 0, "image size must be positive, got \(width)x\(height)")
        self.width = width
        self.height = height
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in stride(from: 0, to: pixels.count, by: 3) {
            pixels[i] = fill.r
            pixels[i + 1] = fill.g
            pixels[i + 2] = fill.b
        }
        self.pixels = pixels
    }

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0, "image size must be positive, got \(width)x\(height)")
        precondition(pixels.count == width * height * 3,
                     "\(width)x\(height) RGB needs \(width * height * 3) bytes, got \(pixels.count)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    public func contains(x: Int, y: Int) -> Bool {
        x >= 0 && x < width && y >= 0 && y < height
    }

    /// Reading outside the image is a programming mistake, unlike drawing there.
    public func pixel(x: Int, y: Int) -> RGBColor {
        precondition(contains(x: x, y: y), "pixel (\(x), \(y)) outside \(width)x\(height) image")
        let i = (y * width + x) * 3
        return RGBColor(pixels[i], pixels[i + 1], pixels[i + 2])
    }

    /// Does nothing outside the image.
    public mutating func setPixel(x: Int, y: Int, _ color: RGBColor) {
        guard contains(x: x, y: y) else { return }
        let i = (y * width + x) * 3
        pixels[i] = color.r
        pixels[i + 1] = color.g
        pixels[i + 2] = color.b
    }

    public mutating func fillRect(x: Int, y: Int, width w: Int, height h: Int, _ color: RGBColor) {
        let x0 = max(x, 0), y0 = max(y, 0)
        let x1 = min(x.addingClamped(w), width), y1 = min(y.addingClamped(h), height)
        guard x0 < x1, y0 < y1 else { return }
        for row in y0..<y1 {
            for col in x0..<x1 { setPixel(x: col, y: row, color) }
        }
    }

    /// A one-pixel outline of the rectangle.
    public mutating func strokeRect(x: Int, y: Int, width w: Int, height h: Int, _ color: RGBColor) {
        guard w > 0, h > 0 else { return }
        fillRect(x: x, y: y, width: w, height: 1, color)
        fillRect(x: x, y: y + h - 1, width: w, height: 1, color)
        fillRect(x: x, y: y, width: 1, height: h, color)
        fillRect(x: x + w - 1, y: y, width: 1, height: h, color)
    }

    /// Bresenham's line from (x0, y0) to (x1, y1), both ends included. The segment is first cut
    /// to the image so that far-away endpoints cost nothing; a cut end is rounded to the nearest
    /// pixel, so the pixels inside the image can differ by one from those of the uncut line.
    /// `dashed` draws runs of four pixels with gaps of three (marker lines).
    public mutating func drawLine(x0: Int, y0: Int, x1: Int, y1: Int, _ color: RGBColor, dashed: Bool = false) {
        guard let (ax, ay, bx, by) = clipSegment(Double(x0), Double(y0), Double(x1), Double(y1)) else { return }
        var x = ax, y = ay
        let dx = abs(bx - ax), dy = -abs(by - ay)
        let sx = ax < bx ? 1 : -1, sy = ay < by ? 1 : -1
        var err = dx + dy
        var step = 0
        while true {
            if !dashed || step % 7 < 4 { setPixel(x: x, y: y, color) }
            if x == bx && y == by { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x += sx }
            if e2 <= dx { err += dx; y += sy }
            step += 1
        }
    }

    /// A plus sign with arms of `radius` pixels.
    public mutating func drawCross(x: Int, y: Int, radius: Int, _ color: RGBColor) {
        drawLine(x0: x - radius, y0: y, x1: x + radius, y1: y, color)
        drawLine(x0: x, y0: y - radius, x1: x, y1: y + radius, color)
    }

    /// A one-pixel circle (midpoint algorithm).
    public mutating func drawRing(x cx: Int, y cy: Int, radius: Int, _ color: RGBColor) {
        guard radius > 0 else { setPixel(x: cx, y: cy, color); return }
        var x = radius, y = 0
        var err = 1 - radius
        while x >= y {
            for (dx, dy) in [(x, y), (y, x), (-y, x), (-x, y), (-x, -y), (-y, -x), (y, -x), (x, -y)] {
                setPixel(x: cx + dx, y: cy + dy, color)
            }
            y += 1
            if err < 0 {
                err += 2 * y + 1
            } else {
                x -= 1
                err += 2 * (y - x) + 1
            }
        }
    }

    /// The attention-centre marker of sample grids: a cross inside a ring.
    public mutating func drawMarker(x: Int, y: Int, radius: Int, _ color: RGBColor) {
        drawCross(x: x, y: y, radius: max(1, radius - 1), color)
        drawRing(x: x, y: y, radius: radius, color)
    }

    /// Copies `image` with its top-left corner at (x, y); the part outside this image is dropped.
    public mutating func blit(_ image: RGBImage, x: Int, y: Int) {
        let x0 = max(0, x), y0 = max(0, y)
        let x1 = min(width, x.addingClamped(image.width)), y1 = min(height, y.addingClamped(image.height))
        guard x0 < x1, y0 < y1 else { return }
        let rowBytes = (x1 - x0) * 3
        for row in y0..<y1 {
            let src = ((row - y) * image.width + (x0 - x)) * 3
            let dst = (row * width + x0) * 3
            pixels.replaceSubrange(dst..<dst + rowBytes, with: image.pixels[src..<src + rowBytes])
        }
    }

    /// Liang-Barsky clipping of a segment to the pixel centres of the image, in Double so that
    /// no endpoint can overflow; nil when the segment misses the image.
    private func clipSegment(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double) -> (Int, Int, Int, Int)? {
        let dx = x1 - x0, dy = y1 - y0
        var t0 = 0.0, t1 = 1.0
        let maxX = Double(width - 1), maxY = Double(height - 1)
        for (p, q) in [(-dx, x0), (dx, maxX - x0), (-dy, y0), (dy, maxY - y0)] {
            if p == 0 {
                if q < 0 { return nil }
            } else {
                let t = q / p
                if p < 0 { t0 = max(t0, t) } else { t1 = min(t1, t) }
            }
        }
        guard t0 <= t1 else { return nil }
        func pixel(_ v: Double, _ limit: Double) -> Int { Int(min(max(v.rounded(), 0), limit)) }
        return (pixel(x0 + t0 * dx, maxX), pixel(y0 + t0 * dy, maxY),
                pixel(x0 + t1 * dx, maxX), pixel(y0 + t1 * dy, maxY))
    }
}

extension Int {
    /// Rectangle ends computed from caller coordinates must not trap on overflow.
    func addingClamped(_ other: Int) -> Int {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }
}
