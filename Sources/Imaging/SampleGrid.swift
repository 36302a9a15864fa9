/// Lays out a batch of images (generated samples, dataset images) as a grid, each image
/// upscaled by whole pixels, with an optional title above and an optional marker per image at
/// its attention centre.
///
/// Centres are in the normalised image coordinates of ACQ's heat maps: x = -1 is the left edge
/// of the image and +1 its right edge, y = -1 the top edge and +1 the bottom edge, so (0, 0) is
/// the middle. A centre outside [-1, 1] is drawn on the nearest edge; a non-finite one is not drawn.
public struct SampleGrid: Sendable {
    /// Pixels between images and around the grid.
    public static let gap = 2

    public let count: Int
    public let channels: Int
    public let imageHeight: Int
    public let imageWidth: Int
    public let columns: Int
    public let scale: Int
    public let title: String?

    /// `shape` is [N, C, H, W] with C = 1 (grey) or 3 (RGB); `columns` larger than N is reduced to N.
    public init(shape: [Int], columns: Int, scale: Int = 1, title: String? = nil) {
        precondition(shape.count == 4, "sample grid shape must be [N, C, H, W], got \(shape)")
        precondition(shape[0] > 0 && shape[2] > 0 && shape[3] > 0, "sample grid needs images, got shape \(shape)")
        precondition(shape[1] == 1 || shape[1] == 3, "sample grid needs 1 or 3 channels, got \(shape[1])")
        precondition(columns > 0, "sample grid columns must be positive, got \(columns)")
        precondition(scale > 0, "sample grid scale must be positive, got \(scale)")
        count = shape[0]
        channels = shape[1]
        imageHeight = shape[2]
        imageWidth = shape[3]
        self.columns = min(columns, count)
        self.scale = scale
        self.title = title.flatMap { $0.isEmpty ? nil : $0 }
    }

    public var rows: Int { (count + columns - 1) / columns }
    /// Size of one upscaled image in the output.
    public var tileWidth: Int { imageWidth * scale }
    public var tileHeight: Int { imageHeight * scale }

    private var gridWidth: Int { Self.gap + columns * (tileWidth + Self.gap) }
    /// Titles of wide grids are drawn twice as large so they stay readable when the PNG is shrunk to fit a screen.
    public var titleScale: Int { gridWidth >= 320 ? 2 : 1 }
    private var titleBand: Int { title == nil ? 0 : BitmapFont.height(scale: titleScale) + 2 * Self.gap }

    /// The output is widened when the title is wider than the grid.
    public var outputWidth: Int {
        max(gridWidth, title.map { BitmapFont.width(of: $0, scale: titleScale) + 2 * Self.gap } ?? 0)
    }
    public var outputHeight: Int { Self.gap + titleBand + rows * (tileHeight + Self.gap) }

    /// Top-left output pixel of image `index` (row-major: image k is in row k / columns, column k % columns).
    public func origin(ofImage index: Int) -> (x: Int, y: Int) {
        precondition(index >= 0 && index < count, "image index \(index) outside 0..<\(count)")
        return (Self.gap + (index % columns) * (tileWidth + Self.gap),
                Self.gap + titleBand + (index / columns) * (tileHeight + Self.gap))
    }

    /// The tile pixel a centre falls in, or nil for a non-finite centre.
    public func markerPixel(centre: (x: Float, y: Float)) -> (x: Int, y: Int)? {
        guard centre.x.isFinite, centre.y.isFinite else { return nil }
        func pixel(_ v: Float, _ size: Int) -> Int {
            let position = (min(max(v, -1), 1) + 1) / 2 * Float(size)
            return min(Int(position.rounded(.down)), size - 1)
        }
        return (pixel(centre.x, tileWidth), pixel(centre.y, tileHeight))
    }

    /// images: [N, C, H, W], values in [0, 1] (clamped; NaN shows as 0).
    /// centres: one per image when given.
    public func render(images: [Float], centres: [(x: Float, y: Float)]? = nil,
                       markerColor: RGBColor = .red, background: RGBColor = .lightGrey,
                       titleColor: RGBColor = .black) -> RGBImage {
        let plane = imageHeight * imageWidth
        precondition(images.count == count * channels * plane,
                     "sample grid of shape [\(count), \(channels), \(imageHeight), \(imageWidth)] "
                         + "needs \(count * channels * plane) values, got \(images.count)")
        if let centres {
            precondition(centres.count == count, "sample grid needs one centre per image: \(count), got \(centres.count)")
        }
        var canvas = RGBImage(width: outputWidth, height: outputHeight, fill: background)
        if let title {
            canvas.drawText(title, x: Self.gap, y: Self.gap + Self.gap / 2, color: titleColor, scale: titleScale)
        }
        let markerRadius = max(2, min(tileWidth, tileHeight) / 10)
        for k in 0..<count {
            var tile = RGBImage(width: tileWidth, height: tileHeight, fill: .black)
            let base = k * channels * plane
            for i in 0..<imageHeight {
                for j in 0..<imageWidth {
                    let offset = base + i * imageWidth + j
                    let color = channels == 1
                        ? RGBColor(grey: Self.byte(images[offset]))
                        : RGBColor(Self.byte(images[offset]), Self.byte(images[offset + plane]),
                                   Self.byte(images[offset + 2 * plane]))
                    tile.fillRect(x: j * scale, y: i * scale, width: scale, height: scale, color)
                }
            }
            // Drawn on the tile, not the canvas, so a marker near an edge cannot spill onto a neighbour.
            if let centre = centres?[k], let at = markerPixel(centre: centre) {
                tile.drawMarker(x: at.x, y: at.y, radius: markerRadius, markerColor)
            }
            let at = origin(ofImage: k)
            canvas.blit(tile, x: at.x, y: at.y)
        }
        return canvas
    }

    static func byte(_ value: Float) -> UInt8 {
        guard !value.isNaN else { return 0 }
        return UInt8((min(max(value, 0), 1) * 255).rounded())
    }
}

extension SampleGrid {
    /// One call for the common case: lay out and render.
    /// images: [N, C, H, W] with `shape` = [N, C, H, W], values in [0, 1]; centres: one per image.
    public static func render(images: [Float], shape: [Int], columns: Int, scale: Int = 1, title: String? = nil,
                              centres: [(x: Float, y: Float)]? = nil) -> RGBImage {
        SampleGrid(shape: shape, columns: columns, scale: scale, title: title).render(images: images, centres: centres)
    }
}
