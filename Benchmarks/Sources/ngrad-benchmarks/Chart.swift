import SVGCharts

/// One panel per operation and element type with more than one size: each contestant's
/// rate (the operation's unit) against the size, both axes logarithmic.
func renderChart(_ cases: [CaseResult], title: String) -> String {
    let charted: [Operation] = [
        .accumulation, .blockAccumulation, .implicitProduct, .denseProduct, .kroneckerProduct, .upload, .download,
    ]
    var panels: [LineChart] = []
    for operation in charted {
        for element in ["float", "double"] {
            let group = cases.filter { $0.operation == operation && $0.element == element }
                .sorted { $0.sizeCoordinate < $1.sizeCoordinate }
            guard !group.isEmpty else { continue }
            var labels: [String] = []
            for result in group {
                for entry in result.contestants where !labels.contains(entry.label) { labels.append(entry.label) }
            }
            let series = labels.map { label in
                LineChart.Series(
                    label: label,
                    points: group.compactMap { result in
                        result.contestants.first { $0.label == label }.map { (x: result.sizeCoordinate, y: $0.rate) }
                    })
            }
            panels.append(
                LineChart(
                    title: "\(operation.rawValue) (\(element)): \(title)", xLabel: operation.sizeMeasure,
                    yLabel: operation.unit, xScale: .logarithmic, yScale: .logarithmic, series: series))
        }
    }
    return LineChart.svg(panels: panels, columns: 3, panelWidth: 560, panelHeight: 380)
}
