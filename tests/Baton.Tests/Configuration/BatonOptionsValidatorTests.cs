using Baton.Gateway.Configuration;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Hosting;

namespace Baton.Tests.Configuration;

[Trait("Category", "Unit")]
public sealed class BatonOptionsValidatorTests
{
    [Fact]
    public void Defaults_WithASecret_AreValid()
    {
        var validator = new BatonOptionsValidator(new Environment("Production"));

        var result = validator.Validate(null, new BatonOptions { Secret = new string('s', 32) });

        Assert.True(result.Succeeded, result.FailureMessage);
    }

    [Theory]
    [InlineData("{shop}:")]
    [InlineData("shop}:")]
    public void ARedisKeyPrefixWithBraces_IsRefused_SinceItWouldBeEverySessionsHashTag(string prefix)
    {
        var validator = new BatonOptionsValidator(new Environment("Production"));
        var options = new BatonOptions { Secret = new string('s', 32) };
        options.Store.RedisKeyPrefix = prefix;

        var result = validator.Validate(null, options);

        Assert.False(result.Succeeded);
        Assert.Contains("RedisKeyPrefix must not contain", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void PostConfigure_FillsTheDevelopmentSecret_OnlyInDevelopment()
    {
        var development = new BatonOptions();
        var production = new BatonOptions();

        new BatonOptionsValidator(new Environment("Development")).PostConfigure(null, development);
        new BatonOptionsValidator(new Environment("Production")).PostConfigure(null, production);

        Assert.Equal(Baton.Protocol.ProtocolConstants.DevelopmentSecret, development.Secret);
        Assert.Null(production.Secret);
    }

    private sealed class Environment(string name) : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = name;

        public string ApplicationName { get; set; } = "Baton.Tests";

        public string ContentRootPath { get; set; } = AppContext.BaseDirectory;

        public IFileProvider ContentRootFileProvider { get; set; } = new NullFileProvider();
    }
}
