using Baton.Tests.Infrastructure;

namespace Baton.Tests.Configuration;

/// <summary>The backend library's production self-check: a bad setting stops the app with the key to fix.</summary>
[Trait("Category", "Functional")]
public sealed class BackendStartupValidationTests
{
    [Theory]
    [InlineData("Baton:Secret is the documented development secret", "--Baton:Secret=" + Baton.Protocol.ProtocolConstants.DevelopmentSecret)]
    [InlineData("Baton:Backend:MaxStateBytes (40000000) is above the server's request body limit", "--Baton:Backend:MaxStateBytes=40000000")]
    public async Task ABadSetting_StopsTheBackend_WithAMessageNamingIt(string expected, string setting)
    {
        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(async () =>
        {
            await using var backend = await LibraryApp.StartAsync("bad", setting);
        });

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }
}
