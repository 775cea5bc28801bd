import Foundation

/// A line chart of one or more series, written as a standalone SVG document that any
/// browser opens. No dependencies: the training plots, the Gaussian-process example and the
/// benchmark charts all go through this one type.
public struct LineChart: Sendable {
    /// One labelled line.
    public struct Series: Sendable {
        /// The legend text.
        public var label: String
        /// The points, drawn in order. Points with a non-finite coordinate, or a
        /// non-positive one on a logarithmic axis, are skipped (the line breaks there).
        public var points: [(x: Double, y: Double)]

        /// A series from its legend text and points.
        public init(label: String, points: [(x: Double, y: Double)]) {
            self.label = label
            self.points = points
        }
    }

    /// How an axis maps values to positions.
    public enum Scale: Sendable {
        /// Equal distances for equal differences.
        case linear
        /// Equal distances for equal ratios; only positive values are drawn.
        case logarithmic
    }

    /// The heading above the plot area.
    public var title: String
    /// The label under the horizontal axis.
    public var xLabel: String
    /// The label beside the vertical axis.
    public var yLabel: String
    /// The horizontal axis's scale.
    public var xScale: Scale
    /// The vertical axis's scale.
    public var yScale: Scale
    /// The lines, drawn in order with a fixed colour cycle.
    public var series: [Series]

    /// A chart; `series` may be empty (the axes are still drawn).
    public init(
        title: String, xLabel: String, yLabel: String, xScale: Scale = .linear, yScale: Scale = .linear,
        series: [Series]
    ) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.xScale = xScale
        self.yScale = yScale
        self.series = series
    }

    /// The chart as a complete SVG document of the given size in pixels.
    public func svg(width: Int = 720, height: Int = 440) -> String {
        Self.svg(panels: [self], panelWidth: width, panelHeight: height)
    }

    /// Several charts in one SVG document, filled row by row into a grid of `columns`
    /// columns (default: all in one row), for example loss against steps and against
    /// seconds, or one panel per benchmarked operation.
    public static func svg(
        panels: [LineChart], columns: Int? = nil, panelWidth: Int = 640, panelHeight: Int = 420
    )
        -> String
    {
        let columns = max(1, min(columns ?? panels.count, max(panels.count, 1)))
        let rows = max(1, (panels.count + columns - 1) / columns)
        let (width, height) = (panelWidth * columns, panelHeight * rows)
        var body = ""
        for (index, panel) in panels.enumerated() {
            let (x, y) = (panelWidth * (index % columns), panelHeight * (index / columns))
            body += "<g transform=\"translate(\(x),\(y))\">\n"
            body += panel.drawing(width: Double(panelWidth), height: Double(panelHeight))
            body += "</g>\n"
        }
        return """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" \
            viewBox="0 0 \(width) \(height)" font-family="Helvetica, Arial, sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            \(body)</svg>

            """
    }
}

// MARK: - Drawing

extension LineChart {
    /// Colour-blind-safe palette (Okabe-Ito), cycled over the series.
    static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]

    fileprivate func drawing(width: Double, height: Double) -> String {
        let plot = (left: 70.0, right: width - 170, top: 36.0, bottom: height - 50)
        let xAxis = Axis(scale: xScale, values: series.flatMap { $0.points.map(\.x) }, from: plot.left, to: plot.right)
        let yAxis = Axis(scale: yScale, values: series.flatMap { $0.points.map(\.y) }, from: plot.bottom, to: plot.top)
        var out = ""
        out += text(
            title, x: (plot.left + plot.right) / 2, y: 20, anchor: "middle", extra: " font-size=\"14\" font-weight=\"bold\"")
        out +=
            "<rect x=\"\(f(plot.left))\" y=\"\(f(plot.top))\" width=\"\(f(plot.right - plot.left))\" "
            + "height=\"\(f(plot.bottom - plot.top))\" fill=\"none\" stroke=\"#444\"/>\n"
        for tick in xAxis.ticks() {
            let x = xAxis.position(tick)
            out += line(x, plot.top, x, plot.bottom, stroke: "#e4e4e4")
            out += text(Self.label(tick), x: x, y: plot.bottom + 16, anchor: "middle")
        }
        for tick in yAxis.ticks() {
            let y = yAxis.position(tick)
            out += line(plot.left, y, plot.right, y, stroke: "#e4e4e4")
            out += text(Self.label(tick), x: plot.left - 6, y: y + 4, anchor: "end")
        }
        out += text(xLabel, x: (plot.left + plot.right) / 2, y: height - 14, anchor: "middle")
        let middle = (plot.top + plot.bottom) / 2
        out +=
            "<text x=\"16\" y=\"\(f(middle))\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(f(middle)))\">"
            + "\(Self.escape(yLabel))</text>\n"
        for (index, line) in series.enumerated() {
            let colour = Self.palette[index % Self.palette.count]
            for run in line.drawableRuns(xAxis: xAxis, yAxis: yAxis) {
                let coordinates = run.map { "\(f(xAxis.position($0.x))),\(f(yAxis.position($0.y)))" }
                if coordinates.count == 1 {
                    let point = coordinates[0].split(separator: ",")
                    out += "<circle cx=\"\(point[0])\" cy=\"\(point[1])\" r=\"2.5\" fill=\"\(colour)\"/>\n"
                } else {
                    out +=
                        "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.8\" points=\""
                        + coordinates.joined(separator: " ") + "\"/>\n"
                }
            }
            let legendY = plot.top + 8 + Double(index) * 18
            out += self.line(plot.right + 12, legendY, plot.right + 36, legendY, stroke: colour, width: 2.5)
            out += text(line.label, x: plot.right + 42, y: legendY + 4, anchor: "start")
        }
        return out
    }

    private func line(
        _ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, width: Double = 1
    )
        -> String
    {
        "<line x1=\"\(f(x1))\" y1=\"\(f(y1))\" x2=\"\(f(x2))\" y2=\"\(f(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(width)\"/>\n"
    }

    private func text(_ content: String, x: Double, y: Double, anchor: String, extra: String = "") -> String {
        "<text x=\"\(f(x))\" y=\"\(f(y))\" text-anchor=\"\(anchor)\"\(extra)>\(Self.escape(content))</text>\n"
    }

    private func f(_ value: Double) -> String { String(format: "%.1f", value) }

    /// A tick label: short, without trailing zeros, exponent form for very large or small.
    static func label(_ value: Double) -> String {
        if value == 0 { return "0" }
        let magnitude = abs(value)
        if magnitude >= 1e5 || magnitude < 1e-3 { return String(format: "%.0e", value) }
        return String(format: "%g", (value * 1e4).rounded() / 1e4)
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

extension LineChart.Series {
    /// The maximal runs of consecutive points that can be drawn on the two axes.
    fileprivate func drawableRuns(xAxis: Axis, yAxis: Axis) -> [[(x: Double, y: Double)]] {
        var runs: [[(x: Double, y: Double)]] = [[]]
        for point in points {
            if xAxis.accepts(point.x) && yAxis.accepts(point.y) {
                runs[runs.count - 1].append(point)
            } else if !(runs.last?.isEmpty ?? true) {
                runs.append([])
            }
        }
        return runs.filter { !$0.isEmpty }
    }
}

// MARK: - Axes

/// One axis: the data range (padded to ticks) mapped onto a pixel interval.
private struct Axis {
    let scale: LineChart.Scale
    let low: Double
    let high: Double
    let from: Double
    let to: Double

    init(scale: LineChart.Scale, values: [Double], from: Double, to: Double) {
        self.scale = scale
        self.from = from
        self.to = to
        let usable = values.filter { $0.isFinite && (scale == .linear || $0 > 0) }
        var low = usable.min() ?? (scale == .linear ? 0 : 1)
        var high = usable.max() ?? (scale == .linear ? 1 : 10)
        switch scale {
        case .linear:
            if low == high { (low, high) = (low - 1, high + 1) }
            let step = Axis.niceStep((high - low) / 5)
            (low, high) = ((low / step).rounded(.down) * step, (high / step).rounded(.up) * step)
        case .logarithmic:
            (low, high) = (pow(10, log10(low).rounded(.down)), pow(10, log10(high).rounded(.up)))
            if low == high { high = low * 10 }
        }
        self.low = low
        self.high = high
    }

    func accepts(_ value: Double) -> Bool { value.isFinite && (scale == .linear || value > 0) }

    func position(_ value: Double) -> Double {
        let t: Double
        switch scale {
        case .linear: t = (value - low) / (high - low)
        case .logarithmic: t = (log10(value) - log10(low)) / (log10(high) - log10(low))
        }
        return from + t * (to - from)
    }

    func ticks() -> [Double] {
        switch scale {
        case .linear:
            let step = Axis.niceStep((high - low) / 5)
            let count = Int(((high - low) / step).rounded())
            return (0...count).map { low + Double($0) * step }
        case .logarithmic:
            let decades = Int(log10(high / low).rounded())
            let stride = max(1, decades / 6)
            return Swift.stride(from: 0, through: decades, by: stride).map { low * pow(10, Double($0)) }
        }
    }

    /// 1, 2 or 5 times a power of ten, at least `raw`.
    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let power = pow(10, log10(raw).rounded(.down))
        for multiple in [1.0, 2, 5, 10] where multiple * power >= raw { return multiple * power }
        return 10 * power
    }
}
