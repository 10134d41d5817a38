import RewindPostgres
import RewindStore
import Testing

/// `--db` and `REWIND_DB` name a file or a PostgreSQL database by the value's scheme, and what the server logs of
/// the choice never holds the password.
@Suite("Store location")
struct StoreLocationTests {
    @Test(arguments: [
        ("rewind.sqlite", StoreLocation.sqlite(path: "rewind.sqlite")),
        ("/var/lib/postgres://x/log.sqlite", .sqlite(path: "/var/lib/postgres://x/log.sqlite")),
        ("postgres.sqlite", .sqlite(path: "postgres.sqlite")),
        ("postgres://rewind@db/rewind", .postgres(url: "postgres://rewind@db/rewind")),
        ("postgresql://rewind:pw@db:6432/rewind?sslmode=require", .postgres(url: "postgresql://rewind:pw@db:6432/rewind?sslmode=require")),
    ])
    func theSchemeDecides(value: String, location: StoreLocation) {
        #expect(StoreLocation(value) == location)
    }

    @Test func descriptionsHideThePassword() throws {
        let url = "postgres://rewind:s3cret-pw@127.0.0.1:5432/rewind?sslmode=disable"
        let location = StoreLocation(url)
        #expect(!location.description.contains("s3cret-pw"))
        #expect(location.description == "postgres://rewind:********@127.0.0.1:5432/rewind?sslmode=disable")
        let opener = EventStoreOpener.postgres(try PostgresStoreConfiguration(url: url, environment: [:]))
        #expect(!opener.description.contains("s3cret-pw"))
        #expect(opener.description.hasPrefix("postgres://rewind@127.0.0.1:5432/rewind"))
        #expect(EventStoreOpener.sqlite(StoreConfiguration(path: "/tmp/log.sqlite")).description == "/tmp/log.sqlite")
    }
}
