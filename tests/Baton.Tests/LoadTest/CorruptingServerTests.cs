using System.Net.Http.Json;
using Baton.LoadTest;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Baton.Tests.LoadTest;

/// <summary>A virtual user against a real server that corrupts its answers: the checker must notice.</summary>
[Trait("Category", "Functional")]
public sealed class CorruptingServerTests
{
    [Theory]
    [InlineData("extra-item", "Mismatch")]
    [InlineData("empty-cart", "Lost")]
    [InlineData("not-json", "Mismatch")]
    [InlineData("honest", "Ok")]
    public async Task AVirtualUser_FlagsACorruptedAnswer(string corruption, string verdict)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--urls=http://127.0.0.1:0"], ContentRootPath = Infrastructure.TestPaths.NewFolder("corrupting") });
        await using var app = builder.Build();
        var cart = new Dictionary<string, int>(StringComparer.Ordinal);
        var posts = 0;
        app.MapPost("/blob", (int bytes) => Results.Json(new { sha256 = "AB", bytes, instance = "x" }));
        app.MapPost("/cart/items", async (HttpContext context) =>
        {
            var item = await context.Request.ReadFromJsonAsync<Dictionary<string, System.Text.Json.JsonElement>>();
            var sku = item!["sku"].GetString()!;
            cart[sku] = cart.GetValueOrDefault(sku) + 1;

            // The first add is answered honestly; the second is corrupted as the test asks.
            if (++posts == 1 || corruption == "honest")
            {
                return Results.Json(new { items = cart.Select(p => new { sku = p.Key, qty = p.Value }), instance = "x" });
            }

            return corruption switch
            {
                "extra-item" => Results.Json(new { items = cart.Select(p => new { sku = p.Key, qty = p.Value }).Append(new { sku = "someone-else", qty = 3 }), instance = "x" }),
                "empty-cart" => Results.Json(new { items = Array.Empty<object>(), instance = "x" }),
                _ => Results.Text("<html>not a cart</html>", "application/json"),
            };
        });
        await app.StartAsync();

        using var user = new VirtualUser(0, Infrastructure.TestBackend.ServerAddress(app), 16, TimeSpan.FromSeconds(10), seed: 7);
        Assert.Equal(Verdict.Ok, (await user.SetUpAsync(CancellationToken.None)).Verdict);
        Assert.Equal(Verdict.Ok, (await user.StepAsync(write: true, CancellationToken.None)).Verdict);
        var outcome = await user.StepAsync(write: true, CancellationToken.None);

        Assert.Equal(Enum.Parse<Verdict>(verdict), outcome.Verdict);
        Assert.Equal(verdict == "Mismatch", user.EverMismatched);
        Assert.Equal(verdict == "Lost", user.EverLost);
    }
}
