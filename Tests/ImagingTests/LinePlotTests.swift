import Foundation
import Imaging
import Testing

@Suite struct LinePlotTests {
    let blue = LinePlot.palette[0]

    /// The pixel column of data value `x` over `range` inside a plot area (mirrors the documented mapping).
    func column(_ x: Double, _ range: ClosedRange<Double>, _ area: PixelRect) -> Int {
        area.x + 1 + Int(((x - range.lowerBound) / (range.upperBound - range.lowerBound) * Double(area.width - 3)).rounded())
    }

    func row(_ y: Double, _ range: ClosedRange<Double>, _ area: PixelRect) -> Int {
        area.y + area.height - 2 - Int(((y - range.lowerBound) / (range.upperBound - range.lowerBound) * Double(area.height - 3)).rounded())
    }

    func singlePanel(_ series: [Series], markers: [Double] = [], logScaleY: Bool = false) -> LinePlot {
        LinePlot(panels: [PlotPanel(title: "test", series: series, markers: markers, logScaleY: logScaleY)],
                 columns: 1, textScale: 1)
    }

    @Test func tickLabelsAreCompact() {
        let cases: [(Double, String)] = [
            (0, "0"), (0.123, "0.123"), (0.0012, "1.2e-3"), (400, "400"), (12.5, "12.5"), (1, "1"),
            (-0.5, "-0.5"), (3e5, "3e5"), (1234, "1234"), (0.01, "0.01"), (9.999, "10"), (-2.5e-7, "-2.5e-7"),
            (1.5e12, "1.5e12"),
        ]
        for (value, text) in cases {
            #expect(LinePlot.formatTick(value) == text, "\(value)")
        }
    }

    @Test func risingLineGoesFromLowerLeftToUpperRight() {
        let plot = singlePanel([Series(name: "loss", values: (0...10).map(Double.init))])
        let image = plot.render(width: 400, height: 300)
        let area = plot.plotAreas(width: 400, height: 300)[0]
        let right = area.x + area.width - 1, bottom = area.y + area.height - 1

        let line = pixels(of: blue, in: image)
        #expect(line.count > area.width / 2)
        #expect(line.allSatisfy { area.contains(x: $0.x, y: $0.y) })
        #expect(image.pixel(x: area.x + 1, y: bottom - 1) == blue)
        #expect(image.pixel(x: right - 1, y: area.y + 1) == blue)
        let byColumn = Dictionary(grouping: line, by: \.x).mapValues { $0.map(\.y).min()! }
        let columns = byColumn.keys.sorted()
        #expect(columns.first == area.x + 1 && columns.last == right - 1)
        for (a, b) in zip(columns, columns.dropFirst()) {
            #expect(byColumn[b]! <= byColumn[a]!, "line goes down between columns \(a) and \(b)")
        }
        // The frame is drawn, so the panel is visibly bounded.
        #expect(image.pixel(x: area.x, y: area.y) != .white)
        #expect(image.pixel(x: right, y: bottom) != .white)
    }

    @Test func nonFinitePointsAreSkippedAndBreakTheLine() {
        var values = (0...10).map(Double.init)
        values[5] = .nan
        values[8] = .infinity
        let plot = singlePanel([Series(name: "loss", values: values)])
        let image = plot.render(width: 400, height: 300)
        let area = plot.plotAreas(width: 400, height: 300)[0]
        let line = pixels(of: blue, in: image)

        // The infinity does not stretch the y range: x = 10, y = 10 is still the top-right corner.
        #expect(image.pixel(x: column(10, 0...10, area), y: row(10, 0...10, area)) == blue)
        #expect(image.pixel(x: column(0, 0...10, area), y: row(0, 0...10, area)) == blue)
        #expect(image.pixel(x: column(6, 0...10, area), y: row(6, 0...10, area)) == blue)
        // No segment bridges the NaN at x = 5 (between the points at x = 4 and x = 6).
        let gap = (column(4, 0...10, area) + 1)..<column(6, 0...10, area)
        #expect(!gap.isEmpty)
        #expect(!line.contains { gap.contains($0.x) })
        // Nor the infinity at x = 8.
        let gap2 = (column(7, 0...10, area) + 1)..<column(9, 0...10, area)
        #expect(!line.contains { gap2.contains($0.x) })
    }

    @Test func emptySeriesGivesAnEmptyPanelWithANote() {
        let plot = singlePanel([Series(name: "acc", points: []), Series(name: "nan", values: [.nan, .nan])])
        let image = plot.render(width: 300, height: 200)
        let area = plot.plotAreas(width: 300, height: 200)[0]
        #expect(area.width > 100 && area.height > 50)
        let inside = (area.y + 1..<area.y + area.height - 1).flatMap { y in
            (area.x + 1..<area.x + area.width - 1).map { x in image.pixel(x: x, y: y) }
        }
        #expect(!inside.contains(blue) && !inside.contains(LinePlot.palette[1]))
        let ink = inside.filter { $0 != .white }
        #expect(ink.count > 20, "the \"no data\" note is missing")
        #expect(Set(ink).count == 1)
    }

    @Test func severalSeriesGetDistinctColoursAndALegend() {
        let plot = singlePanel([Series(name: "train", values: [3, 2, 1]), Series(name: "test", values: [1, 2, 3])])
        let image = plot.render(width: 400, height: 300)
        let area = plot.plotAreas(width: 400, height: 300)[0]
        for color in LinePlot.palette.prefix(2) {
            let drawn = pixels(of: color, in: image)
            #expect(drawn.contains { area.contains(x: $0.x, y: $0.y) }, "series line")
            #expect(drawn.contains { $0.y < area.y }, "legend swatch")
        }
        // The falling series starts top-left, the rising one bottom-left.
        #expect(image.pixel(x: area.x + 1, y: area.y + 1) == LinePlot.palette[0])
        #expect(image.pixel(x: area.x + 1, y: area.y + area.height - 2) == LinePlot.palette[1])
    }

    @Test func markerLineIsDrawnAtItsX() {
        let plot = singlePanel([Series(name: "loss", values: (0...10).map { 10 - Double($0) })], markers: [5, 42])
        let image = plot.render(width: 400, height: 300)
        let area = plot.plotAreas(width: 400, height: 300)[0]
        func ink(inColumn x: Int) -> Int {
            (area.y + 1..<area.y + area.height - 1).filter {
                let p = image.pixel(x: x, y: $0)
                return p != .white && p != blue
            }.count
        }
        let markerColumn = column(5, 0...10, area)
        #expect(ink(inColumn: markerColumn) > (area.height - 2) / 3)
        #expect(ink(inColumn: markerColumn + 3) == 0)
        // A marker outside the data's x range is not drawn (and does not widen the range).
        #expect(image.pixel(x: column(10, 0...10, area), y: row(0, 0...10, area)) == blue)
    }

    @Test func logScaleSpacesDecadesEvenlyAndSkipsNonPositive() {
        let series = Series(name: "loss", points: [(0, 1), (1, 10), (2, 0), (3, 1000), (4, -5)])
        let plot = singlePanel([series], logScaleY: true)
        let image = plot.render(width: 400, height: 300)
        let area = plot.plotAreas(width: 400, height: 300)[0]
        let logRange = 0.0...3.0
        #expect(image.pixel(x: column(0, 0...3, area), y: row(0, logRange, area)) == blue)
        #expect(image.pixel(x: column(1, 0...3, area), y: row(1, logRange, area)) == blue)
        #expect(image.pixel(x: column(3, 0...3, area), y: row(3, logRange, area)) == blue)
        // y = 0 at x = 2 breaks the line: nothing between x = 1 and x = 3 except the isolated point at x = 3.
        let gap = (column(1, 0...3, area) + 1)..<(column(3, 0...3, area) - 1)
        #expect(!pixels(of: blue, in: image).contains { gap.contains($0.x) })
    }

    @Test func panelsAreLaidOutRowByRowWithoutOverlap() {
        let series = ["loss", "acc", "lr"].map { Series(name: $0, values: [1, 2]) }
        let plot = LinePlot(series: series, columns: 2, title: "run 3")
        let areas = plot.plotAreas(width: 600, height: 400)
        #expect(areas.count == 3)
        #expect(areas[0].y == areas[1].y)
        #expect(areas[1].x > areas[0].x + areas[0].width)
        #expect(areas[2].x == areas[0].x)
        #expect(areas[2].y > areas[0].y + areas[0].height)
        for area in areas {
            #expect(area.x >= 0 && area.y >= 0 && area.x + area.width <= 600 && area.y + area.height <= 400)
        }
        let image = plot.render(width: 600, height: 400)
        #expect(image.width == 600 && image.height == 400)
        #expect(pixels(of: .black, in: image).contains { $0.y < areas[0].y - 20 }, "figure title")
    }
}
