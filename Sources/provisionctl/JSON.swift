import Foundation

/// A decoded JSON report, read loosely for tables and printed verbatim for `--output json`.
struct JSON: @unchecked Sendable {
    let text: String
    let value: Any

    init(text: String) throws {
        self.text = text
        do { value = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) } catch {
            throw Failure.refused("the daemon sent a report that is not JSON")
        }
    }

    init(value: Any) {
        self.value = value
        let data = (try? JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        text = String(decoding: data, as: UTF8.self)
    }

    subscript(key: String) -> JSON? {
        guard let dict = value as? [String: Any], let v = dict[key], !(v is NSNull) else { return nil }
        return JSON(wrapping: v)
    }

    private init(wrapping v: Any) {
        value = v
        text = ""
    }

    var array: [JSON] { (value as? [Any])?.map { JSON(wrapping: $0) } ?? [] }
    var string: String { value as? String ?? (value as? NSNumber).map { "\($0)" } ?? "" }
    var int64: Int64 { (value as? NSNumber)?.int64Value ?? Int64(string) ?? 0 }
    var double: Double { (value as? NSNumber)?.doubleValue ?? 0 }
    var bool: Bool { (value as? NSNumber)?.boolValue ?? false }
    var strings: [String] { array.map(\.string) }
}

/// Plain aligned columns.
struct Table {
    var header: [String]
    var rows: [[String]] = []

    init(_ header: String...) { self.header = header }

    mutating func add(_ cells: String...) { rows.append(cells) }

    func render() -> String {
        let all = [header] + rows
        let widths = header.indices.map { i in all.map { i < $0.count ? $0[i].count : 0 }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

/// 1536 → "1.5 KiB".
func human(_ bytes: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    var value = Double(bytes)
    var unit = 0
    while abs(value) >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f", value) + " " + units[unit]
}

func emit(_ text: String) { print(text) }
