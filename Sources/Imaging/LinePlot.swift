import Foundation

/// A named sequence of points, drawn as a polyline in the order given. A non-finite point (and,
/// on a log-scale axis, a y <= 0) is skipped and breaks the line, so a missing measurement shows
/// as a gap rather than as a segment bridging it.
public struct Series: Sendable {
    public var name: String
    public var points: [(x: Double, y: Double)]

    public init(name: String, points: [(x: Double, y: Double)]) {
        self.name = name
        self.points = points
    }

    /// Points at x = 0, 1, 2, ... (one value per step or epoch).
    public init(name: String, values: [Double]) {
        self.init(name: name, points: values.enumerated().map { (x: Double($0.offset), y: $0.element) })
    }
}

/// One panel of a `LinePlot`: a frame with several series in distinct colours (a legend under
/// the title when there is more than one), min/max tick labels on both axes, and dashed vertical
/// marker lines at the given x values (e.g. the end of a warm-up phase).
/// A panel with no drawable point shows its frame with "no data" instead of failing, so a figure
/// can be written while a run has not yet produced every quantity.
public struct PlotPanel: Sendable {
    public var title: String
    public var series: [Series]
    public var markers: [Double]
    public var logScaleY: Bool

    /// Without a title, the panel is titled by its series' names.
    public init(title: String? = nil, series: [Series], markers: [Double] = [], logScaleY: Bool = false) {
        self.title = title ?? series.map(\.name).joined(separator: ", ")
        self.series = series
        self.markers = markers
        self.logScaleY = logScaleY
    }
}

/// A rectangle of pixels; `x + width` and `y + height` are just outside it.
public struct PixelRect: Equatable, Sendable {
    public var x: Int
    public var y: Int
    public var width: Int
    public var height: Int

    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }

    public func contains(x px: Int, y py: Int) -> Bool {
        px >= x && px < x + width && py >= y && py < y + height
    }
}

/// A figure of panels laid out row by row in `columns` columns, with an optional title on top;
/// e.g. the losses and accuracies of a run, one panel per quantity.
public struct LinePlot: Sendable {
    public var panels: [PlotPanel]
    public var columns: Int
    public var title: String?
    /// Pixel size of the font; nil picks 1 for panels under 250x160 pixels, larger for larger ones.
    public var textScale: Int?

    public init(panels: [PlotPanel], columns: Int = 2, title: String? = nil, textScale: Int? = nil) {
        precondition(columns > 0, "plot columns must be positive, got \(columns)")
        precondition(textScale.map { $0 > 0 } ?? true, "text scale must be positive")
        self.panels = panels
        self.columns = columns
        self.title = title.flatMap { $0.isEmpty ? nil : $0 }
        self.textScale = textScale
    }

    /// One panel per series, all with the same marker lines and y scale.
    public init(series: [Series], columns: Int = 2, title: String? = nil, markers: [Double] = [],
                logScaleY: Bool = false) {
        self.init(panels: series.map { PlotPanel(series: [$0], markers: markers, logScaleY: logScaleY) },
                  columns: columns, title: title)
    }

    /// Series colours in order (the "tab10" colours, distinguishable on white).
    public static let palette: [RGBColor] = [
        RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(214, 39, 40),
        RGBColor(148, 103, 189), RGBColor(140, 86, 75), RGBColor(227, 119, 194), RGBColor(127, 127, 127),
        RGBColor(188, 189, 34), RGBColor(23, 190, 207),
    ]
    static let frameColor = RGBColor(grey: 60)
    static let textColor = RGBColor.black
    static let markerColor = RGBColor(grey: 150)
    static let emptyColor = RGBColor(grey: 120)

    public func render(width: Int, height: Int) -> RGBImage {
        let layout = FigureLayout(plot: self, width: width, height: height)
        var canvas = RGBImage(width: width, height: height, fill: .white)
        if let title {
            let textWidth = BitmapFont.width(of: title, scale: layout.textScale)
            canvas.drawText(title, x: max(layout.margin, (width - textWidth) / 2), y: layout.margin,
                            color: Self.textColor, scale: layout.textScale)
        }
        for (index, panel) in panels.enumerated() {
            let cell = layout.cell(index)
            // Each panel is drawn on its own image so that long titles or legends are cut at
            // the panel's edge instead of running into the next panel.
            let panelImage = PanelRenderer(panel: panel, width: cell.width, height: cell.height,
                                           textScale: layout.textScale).render()
            canvas.blit(panelImage, x: cell.x, y: cell.y)
        }
        return canvas
    }

    /// The framed data area of every panel in the figure `render(width:height:)` draws; data
    /// points are mapped to the pixels just inside the frame.
    public func plotAreas(width: Int, height: Int) -> [PixelRect] {
        let layout = FigureLayout(plot: self, width: width, height: height)
        return panels.enumerated().map { index, panel in
            let cell = layout.cell(index)
            let area = PanelRenderer(panel: panel, width: cell.width, height: cell.height,
                                     textScale: layout.textScale).plotArea
            return PixelRect(x: cell.x + area.x, y: cell.y + area.y, width: area.width, height: area.height)
        }
    }

    /// Compact axis labels: up to three significant digits between 0.01 and 10000 ("0.123",
    /// "400", "12.5"), two in exponent form outside it ("1.2e-3", "3e5").
    public static func formatTick(_ value: Double) -> String {
        guard value.isFinite else { return value.isNaN ? "nan" : (value > 0 ? "inf" : "-inf") }
        if value == 0 { return "0" }
        let magnitude = abs(value)
        if magnitude >= 0.01 && magnitude < 10_000 {
            let decimals = max(0, 2 - Int(log10(magnitude).rounded(.down)))
            return trimZeros(String(format: "%.\(decimals)f", value))
        }
        let text = String(format: "%.1e", value)
        guard let e = text.firstIndex(of: "e") else { return text }
        let mantissa = trimZeros(String(text[..<e]))
        var exponent = String(text[text.index(after: e)...])
        let negative = exponent.hasPrefix("-")
        exponent = String(exponent.drop { $0 == "+" || $0 == "-" || $0 == "0" })
        return mantissa + "e" + (negative ? "-" : "") + (exponent.isEmpty ? "0" : exponent)
    }

    private static func trimZeros(_ text: String) -> String {
        guard text.contains(".") else { return text }
        var trimmed = text
        while trimmed.hasSuffix("0") { trimmed.removeLast() }
        if trimmed.hasSuffix(".") { trimmed.removeLast() }
        return trimmed
    }
}

/// Where the figure title and the panel cells go.
private struct FigureLayout {
    let textScale: Int
    let margin: Int
    let columns: Int
    let top: Int
    let cellWidth: Int
    let cellHeight: Int

    init(plot: LinePlot, width: Int, height: Int) {
        precondition(width > 0 && height > 0, "plot size must be positive, got \(width)x\(height)")
        columns = max(1, min(plot.columns, plot.panels.count))
        let rows = max(1, (plot.panels.count + columns - 1) / columns)
        textScale = plot.textScale ?? max(1, min(width / columns / 250, height / rows / 160))
        margin = 4 * textScale
        top = margin + (plot.title == nil ? 0 : BitmapFont.height(scale: textScale) + 2 * margin)
        cellWidth = max(1, (width - margin - columns * margin) / columns)
        cellHeight = max(1, (height - top - rows * margin) / rows)
    }

    func cell(_ index: Int) -> PixelRect {
        PixelRect(x: margin + (index % columns) * (cellWidth + margin),
                  y: top + (index / columns) * (cellHeight + margin),
                  width: cellWidth, height: cellHeight)
    }
}

/// One panel: computes its data ranges and labels, then draws in panel-local pixels.
private struct PanelRenderer {
    let panel: PlotPanel
    let width: Int
    let height: Int
    let s: Int
    /// Finite (x, y) ranges of the drawable points, y as log10 on a log axis; nil when there are none.
    let range: (x: ClosedRange<Double>, y: ClosedRange<Double>)?
    let plotArea: PixelRect

    init(panel: PlotPanel, width: Int, height: Int, textScale: Int) {
        self.panel = panel
        self.width = width
        self.height = height
        s = textScale
        var xs: [Double] = [], ys: [Double] = []
        for series in panel.series {
            for point in series.points {
                if let y = Self.axisValue(point, logScaleY: panel.logScaleY) {
                    xs.append(point.x)
                    ys.append(y)
                }
            }
        }
        if let xMin = xs.min(), let xMax = xs.max(), let yMin = ys.min(), let yMax = ys.max() {
            range = (Self.widened(xMin...xMax, flatDelta: xMin == 0 ? 1 : abs(xMin) * 0.05),
                     Self.widened(yMin...yMax, flatDelta: panel.logScaleY ? 0.5 : (yMin == 0 ? 1 : abs(yMin) * 0.05)))
        } else {
            range = nil
        }

        let lineHeight = BitmapFont.height(scale: textScale)
        var top = lineHeight + 3 * textScale
        if panel.series.count > 1 { top += lineHeight + 2 * textScale }
        var labelWidth = 0
        if let range {
            labelWidth = [range.y.lowerBound, range.y.upperBound]
                .map { BitmapFont.width(of: Self.yLabel($0, logScaleY: panel.logScaleY), scale: textScale) }
                .max() ?? 0
        }
        let left = labelWidth + 4 * textScale
        let bottom = lineHeight + 4 * textScale
        let right = 2 * textScale
        plotArea = PixelRect(x: left, y: top, width: max(3, width - left - right), height: max(3, height - top - bottom))
    }

    /// The y coordinate a point is plotted at, or nil when it is skipped.
    static func axisValue(_ point: (x: Double, y: Double), logScaleY: Bool) -> Double? {
        guard point.x.isFinite, point.y.isFinite else { return nil }
        guard logScaleY else { return point.y }
        return point.y > 0 ? log10(point.y) : nil
    }

    /// A single value is shown in the middle of a small range instead of dividing by zero.
    static func widened(_ range: ClosedRange<Double>, flatDelta: Double) -> ClosedRange<Double> {
        range.lowerBound < range.upperBound ? range : (range.lowerBound - flatDelta)...(range.upperBound + flatDelta)
    }

    static func yLabel(_ axisValue: Double, logScaleY: Bool) -> String {
        LinePlot.formatTick(logScaleY ? pow(10, axisValue) : axisValue)
    }

    func render() -> RGBImage {
        var image = RGBImage(width: width, height: height, fill: .white)
        let titleWidth = BitmapFont.width(of: panel.title, scale: s)
        image.drawText(panel.title, x: max(0, plotArea.x + (plotArea.width - titleWidth) / 2), y: 0,
                       color: LinePlot.textColor, scale: s)
        if panel.series.count > 1 { drawLegend(on: &image) }

        guard let range else {
            image.strokeRect(x: plotArea.x, y: plotArea.y, width: plotArea.width, height: plotArea.height,
                             LinePlot.frameColor)
            let message = "no data"
            image.drawText(message, x: plotArea.x + (plotArea.width - BitmapFont.width(of: message, scale: s)) / 2,
                           y: plotArea.y + (plotArea.height - BitmapFont.height(scale: s)) / 2,
                           color: LinePlot.emptyColor, scale: s)
            return image
        }

        for marker in panel.markers where marker.isFinite && range.x.contains(marker) {
            let x = pixelX(marker, range.x)
            image.drawLine(x0: x, y0: plotArea.y + 1, x1: x, y1: plotArea.y + plotArea.height - 2,
                           LinePlot.markerColor, dashed: true)
        }
        image.strokeRect(x: plotArea.x, y: plotArea.y, width: plotArea.width, height: plotArea.height,
                         LinePlot.frameColor)
        drawTicks(on: &image, range: range)
        for (index, series) in panel.series.enumerated() {
            drawSeries(series, color: LinePlot.palette[index % LinePlot.palette.count], range: range, on: &image)
        }
        return image
    }

    private func drawLegend(on image: inout RGBImage) {
        var x = plotArea.x
        let y = BitmapFont.height(scale: s) + 2 * s
        for (index, series) in panel.series.enumerated() {
            let color = LinePlot.palette[index % LinePlot.palette.count]
            image.fillRect(x: x, y: y + 3 * s, width: 8 * s, height: s, color)
            x += 10 * s
            image.drawText(series.name, x: x, y: y, color: LinePlot.textColor, scale: s)
            x += BitmapFont.width(of: series.name, scale: s) + 8 * s
        }
    }

    private func drawTicks(on image: inout RGBImage, range: (x: ClosedRange<Double>, y: ClosedRange<Double>)) {
        let plotBottom = plotArea.y + plotArea.height - 1
        let plotRight = plotArea.x + plotArea.width - 1
        let tick = 2 * s

        let yTicks = [(range.y.upperBound, plotArea.y + 1, plotArea.y),
                      (range.y.lowerBound, plotBottom - 1, plotBottom - BitmapFont.capHeight * s + 1)]
        for (value, pixelY, labelTop) in yTicks {
            image.drawLine(x0: plotArea.x - tick, y0: pixelY, x1: plotArea.x - 1, y1: pixelY, LinePlot.frameColor)
            let label = PanelRenderer.yLabel(value, logScaleY: panel.logScaleY)
            image.drawText(label, x: plotArea.x - tick - s - BitmapFont.width(of: label, scale: s), y: labelTop,
                           color: LinePlot.textColor, scale: s)
        }

        let labelTop = plotBottom + tick + s + 1
        let minLabel = LinePlot.formatTick(range.x.lowerBound)
        let maxLabel = LinePlot.formatTick(range.x.upperBound)
        for pixelX in [plotArea.x + 1, plotRight - 1] {
            image.drawLine(x0: pixelX, y0: plotBottom + 1, x1: pixelX, y1: plotBottom + tick, LinePlot.frameColor)
        }
        image.drawText(minLabel, x: plotArea.x, y: labelTop, color: LinePlot.textColor, scale: s)
        image.drawText(maxLabel, x: plotRight + 1 - BitmapFont.width(of: maxLabel, scale: s), y: labelTop,
                       color: LinePlot.textColor, scale: s)
    }

    private func drawSeries(_ series: Series, color: RGBColor, range: (x: ClosedRange<Double>, y: ClosedRange<Double>),
                            on image: inout RGBImage) {
        var run: [(x: Int, y: Int)] = []
        func flush() {
            if run.count == 1 {
                image.fillRect(x: run[0].x - s, y: run[0].y - s, width: 2 * s + 1, height: 2 * s + 1, color)
            }
            for (a, b) in zip(run, run.dropFirst()) {
                for dx in 0..<s {
                    for dy in 0..<s {
                        image.drawLine(x0: a.x + dx, y0: a.y + dy, x1: b.x + dx, y1: b.y + dy, color)
                    }
                }
            }
            run.removeAll()
        }
        for point in series.points {
            guard let y = PanelRenderer.axisValue(point, logScaleY: panel.logScaleY) else {
                flush()
                continue
            }
            run.append((pixelX(point.x, range.x), pixelY(y, range.y)))
        }
        flush()
    }

    /// Data values map to the pixels just inside the frame. Halving before subtracting keeps
    /// the fraction finite even for ranges as wide as the Double range.
    private func fraction(_ value: Double, _ range: ClosedRange<Double>) -> Double {
        let t = (value / 2 - range.lowerBound / 2) / (range.upperBound / 2 - range.lowerBound / 2)
        return t.isFinite ? min(max(t, 0), 1) : 0
    }

    private func pixelX(_ value: Double, _ range: ClosedRange<Double>) -> Int {
        plotArea.x + 1 + Int((fraction(value, range) * Double(plotArea.width - 3)).rounded())
    }

    private func pixelY(_ value: Double, _ range: ClosedRange<Double>) -> Int {
        plotArea.y + plotArea.height - 2 - Int((fraction(value, range) * Double(plotArea.height - 3)).rounded())
    }
}
