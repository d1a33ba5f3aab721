using System.Net;
using Baton.Protocol;
using Baton.Tests.Infrastructure;

namespace Baton.Tests.Checkpoints;

/// <summary>Clients can neither read nor write session state through protocol headers.</summary>
[Trait("Category", "Functional")]
public sealed class ProtocolHeaderTests : IAsyncLifetime
{
    private static readonly string[] Spellings =
    [
        "Baton-Session", "baton-session", "BATON-SESSION", "Baton_Session", "baton_session",
        "Baton-Checkpoint", "baton_checkpoint", "Baton-Restore", "Baton-Incarnation", "Baton-Stale", "bAtOn-Anything",
    ];

    private readonly List<TestBackend> _backends = [];
    private TestGateway _gateway = null!;

    public async Task InitializeAsync()
    {
        for (var i = 1; i <= 3; i++)
        {
            _backends.Add(await LibraryApp.StartAsync($"b{i}"));
        }

        _gateway = await TestGateway.StartAsync(_backends);
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }
    }

    [Fact]
    public async Task ClientSendingProtocolHeadersInEverySpelling_ChangesNoSession_AndGetsNo5xx()
    {
        using var victim = _gateway.NewClient();
        await victim.PostAsync(new Uri("/inc", UriKind.Relative), null);
        var victimId = SessionCookies.SessionIdOf(victim, _gateway);

        // A correctly signed grant for the victim's session: valid protocol, but from a client.
        var keys = new ProtocolKeys(TestGateway.Secret);
        var forgedGrant = new SessionGrant(victimId, 0, 0, 60_000, 1_000_000, ProtocolTime.Now(TimeProvider.System)).Format(keys);
        using var attacker = _gateway.NewClient();
        foreach (var name in Spellings)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/inc");
            request.Headers.TryAddWithoutValidation(name, forgedGrant);
            using var response = await attacker.SendAsync(request);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{name}: {(int)response.StatusCode}");
        }

        Assert.Equal("1/-", await victim.GetStringAsync(new Uri("/read", UriKind.Relative)));
        Assert.Equal($"{Spellings.Length}/-", await attacker.GetStringAsync(new Uri("/read", UriKind.Relative)));
    }

    [Theory]
    [InlineData("POST", "/inc", 200)]
    [InlineData("GET", "/read", 200)]
    [InlineData("POST", "/fail", 500)]
    [InlineData("POST", "/teapot", 418)]
    [InlineData("GET", "/no-such-path", 404)]
    [InlineData("POST", "/empty", 204)]
    [InlineData("POST", "/late", 200)]
    public async Task NoProtocolHeaderReachesAClient_WhateverTheStatus(string method, string path, int status)
    {
        using var client = _gateway.NewClient();
        await client.PostAsync(new Uri("/inc", UriKind.Relative), null);

        using var response = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));

        Assert.Equal(status, (int)response.StatusCode);
        var names = response.Headers.Select(h => h.Key).Concat(response.Content.Headers.Select(h => h.Key)).Concat(response.TrailingHeaders.Select(h => h.Key));
        Assert.DoesNotContain(names, ProtocolConstants.IsProtocolHeader);
    }

    [Fact]
    public async Task ACheckpointOnA500_IsStored_AndItsStateNeverReachesTheClient()
    {
        using var client = _gateway.NewClient();

        using var failed = await client.PostAsync(new Uri("/fail", UriKind.Relative), null);
        var body = await failed.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        Assert.StartsWith("{", body, StringComparison.Ordinal);
        Assert.Equal(1, StoredSessions.FromJournal(_gateway.JournalPath, SessionCookies.SessionIdOf(client, _gateway))!.Int32("n"));
        Assert.Equal("1/-", await client.GetStringAsync(new Uri("/read", UriKind.Relative)));
    }

    [Fact]
    public async Task AChangeMadeAfterTheResponseStarted_RidesWithTheSessionsNextResponse()
    {
        using var client = _gateway.NewClient();

        using var streamed = await client.PostAsync(new Uri("/late", UriKind.Relative), null);
        Assert.Equal("streaming", await streamed.Content.ReadAsStringAsync());
        var id = SessionCookies.SessionIdOf(client, _gateway);
        Assert.Null(StoredSessions.FromJournal(_gateway.JournalPath, id)?.Values.GetValueOrDefault("late"));

        Assert.Equal("0/yes", await client.GetStringAsync(new Uri("/read", UriKind.Relative)));
        var afterRead = StoredSessions.FromJournal(_gateway.JournalPath, id)!;
        Assert.Equal(1, afterRead.Version);
        Assert.Equal("yes"u8.ToArray(), afterRead.Values["late"]);

        // A response without a body cannot lead with state either: its change rides with the next one.
        using var noBody = await client.PostAsync(new Uri("/empty", UriKind.Relative), null);
        Assert.Equal(HttpStatusCode.NoContent, noBody.StatusCode);
        Assert.Equal(1, StoredSessions.FromJournal(_gateway.JournalPath, id)!.Version);
        Assert.Equal("1/yes", await client.GetStringAsync(new Uri("/read", UriKind.Relative)));
        var afterSecondRead = StoredSessions.FromJournal(_gateway.JournalPath, id)!;
        Assert.Equal(2, afterSecondRead.Version);
        Assert.Equal(1, afterSecondRead.Int32("n"));
    }
}
