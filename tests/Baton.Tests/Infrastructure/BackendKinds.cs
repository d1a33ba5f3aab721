using Baton.LoadTest;

namespace Baton.Tests.Infrastructure;

/// <summary>Theory data for a test body that runs against both demo backends: the ASP.NET Core one and the Express one.</summary>
public static class BackendKinds
{
    public static TheoryData<BackendKind> All => new() { BackendKind.Dotnet, BackendKind.Node };
}
