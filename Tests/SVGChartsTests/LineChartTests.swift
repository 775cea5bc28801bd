import Foundation
import SVGCharts
import Testing

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Collects element names and attributes, proving the document is well-formed XML.
private final class ElementCollector: NSObject, XMLParserDelegate {
    var elements: [(name: String, attributes: [String: String])] = []
    var texts: [String] = []

    func parser(
        _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        elements.append((name, attributes))
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { texts.append(string) }
}

private func parse(_ svg: String) throws -> ElementCollector {
    let parser = XMLParser(data: Data(svg.utf8))
    let collector = ElementCollector()
    parser.delegate = collector
    #expect(parser.parse(), "not well-formed: \(String(describing: parser.parserError))")
    return collector
}

@Suite struct LineChartTests {
    @Test func drawsOnePolylinePerSeriesWithEscapedLabels() throws {
        let chart = LineChart(
            title: "Loss <train>", xLabel: "step", yLabel: "loss", yScale: .logarithmic,
            series: [
                .init(label: "SGD & momentum", points: (1...50).map { (Double($0), 2 / Double($0)) }),
                .init(label: "K-FAC", points: (1...10).map { (Double($0), exp(-Double($0))) }),
            ])
        let document = try parse(chart.svg())
        #expect(document.elements.first?.name == "svg")
        let polylines = document.elements.filter { $0.name == "polyline" }
        #expect(polylines.count == 2)
        #expect(polylines[0].attributes["points"]?.split(separator: " ").count == 50)
        let text = document.texts.joined()
        #expect(text.contains("SGD & momentum"))
        #expect(text.contains("Loss <train>"))
    }

    @Test func breaksLinesAtPointsAnAxisCannotShow() throws {
        let points: [(x: Double, y: Double)] = [(1, 1), (2, 0.5), (3, 0), (4, .nan), (5, 0.1), (6, 0.05)]
        let chart = LineChart(
            title: "t", xLabel: "x", yLabel: "y", yScale: .logarithmic, series: [.init(label: "a", points: points)])
        let polylines = try parse(chart.svg()).elements.filter { $0.name == "polyline" }
        #expect(polylines.map { $0.attributes["points"]?.split(separator: " ").count } == [2, 2])
    }

    @Test func placesPanelsSideBySide() throws {
        let panel = LineChart(title: "p", xLabel: "x", yLabel: "y", series: [.init(label: "a", points: [(0, 0), (1, 1)])])
        let document = try parse(LineChart.svg(panels: [panel, panel], panelWidth: 300, panelHeight: 200))
        #expect(document.elements.first?.attributes["width"] == "600")
        #expect(document.elements.filter { $0.name == "g" }.count == 2)
    }

    @Test func fillsAGridRowByRow() throws {
        let panel = LineChart(title: "p", xLabel: "x", yLabel: "y", series: [.init(label: "a", points: [(0, 0), (1, 1)])])
        let document = try parse(
            LineChart.svg(panels: Array(repeating: panel, count: 5), columns: 2, panelWidth: 300, panelHeight: 200))
        let root = try #require(document.elements.first)
        #expect(root.attributes["width"] == "600" && root.attributes["height"] == "600")
        let offsets = document.elements.filter { $0.name == "g" }.compactMap { $0.attributes["transform"] }
        #expect(offsets == ["translate(0,0)", "translate(300,0)", "translate(0,200)", "translate(300,200)", "translate(0,400)"])
    }

    @Test func emptyAndConstantSeriesStillDrawAxes() throws {
        for series in [[], [LineChart.Series(label: "flat", points: [(1, 3), (2, 3)])]] {
            let chart = LineChart(title: "t", xLabel: "x", yLabel: "y", series: series)
            let document = try parse(chart.svg())
            #expect(document.elements.contains { $0.name == "rect" })
            #expect(document.elements.filter { $0.name == "text" }.count >= 4)
        }
    }
}
