import ReconcileCore
import Testing

struct QuantitiesTests {
    @Test(arguments: [
        ("5s", Duration.seconds(5)), ("500ms", .milliseconds(500)), ("1m30s", .seconds(90)),
        ("1.5s", .milliseconds(1500)),
        ("2h", .seconds(7200)), ("0s", .zero),
    ])
    func durations(_ text: String, _ expected: Duration) {
        #expect(Quantities.duration(text) == expected)
    }

    @Test(arguments: ["", "5", "five", "5x", "s", "-1s", "1s2"])
    func notDurations(_ text: String) {
        #expect(Quantities.duration(text) == nil)
    }

    @Test(arguments: [
        (Duration.seconds(5), "5s"), (.milliseconds(500), "500ms"), (.seconds(90), "1m30s"), (.seconds(3600), "1h"),
        (.zero, "0s"), (.milliseconds(1500), "1.5s"),
    ])
    func formatting(_ duration: Duration, _ expected: String) {
        #expect(Quantities.format(duration) == expected)
    }

    @Test(arguments: [
        ("512m", Int64(512 << 20)), ("1g", 1 << 30), ("1536k", 1536 << 10), ("100", 100), ("2GiB", 2 << 30),
    ])
    func sizes(_ text: String, _ expected: Int64) {
        #expect(Quantities.bytes(text) == expected)
    }

    @Test(arguments: ["", "m", "1t", "-5m", "1.5g", "99999999999999999999g"])
    func notSizes(_ text: String) {
        #expect(Quantities.bytes(text) == nil)
    }

    @Test func sizeFormatting() {
        #expect(Quantities.format(bytes: 512 << 20) == "512m")
        #expect(Quantities.format(bytes: 1 << 30) == "1g")
        #expect(Quantities.format(bytes: 1000) == "1000b")
    }
}
